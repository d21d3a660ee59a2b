"""Real tiny ``trainer.fit`` runs: every artifact, exact resume, Ctrl-C, and one-line errors.

Runs use generated 48x48 images, ``--weights none`` (nothing downloaded), mobilenet_v3_small at a
32x32 input and 1-2 epochs, so each takes a few seconds on two cores.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from shared import DEFAULT_LABELS
from shared.cli import run_cli
from shared.paths import REPO
from trainer.checkpoint import BEST, LAST, load_checkpoint
from trainer.fit import main
from trainer.linear_head import STRENGTHS
from trainer.manifest import Manifest
from trainer.synthetic import generate

TINY = [
    "--weights", "none", "--arch", "mobilenet_v3_small", "--resize", "36", "--crop", "32",
    "--batch-size", "8", "--no-export", "--no-progress", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = generate(tmp_path_factory.mktemp("fit") / "data", per_class=5, size=48)
    (root / "Winged Drones" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Flying Birds" / "readme.txt").write_text("not an image")
    return root


def run(*args: str) -> int:
    return run_cli(main, [*args], prog="trainer.fit")


def test_tiny_run_writes_every_report_and_a_complete_checkpoint(data, tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    status = run(str(data), "--run-dir", str(run_dir), "--epochs", "2", "--views", "2", *TINY)
    out = capsys.readouterr().out
    assert status == 0, out
    expected = {
        BEST, LAST, "split.json", "config.json", "skipped.csv", "class_counts.png",
        "samples.png", "history.csv", "history.json", "curves.png", "report.md", "timing.json",
    }  # fmt: skip
    assert expected <= {p.name for p in run_dir.iterdir()}
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    for png in run_dir.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = load_checkpoint(run_dir / BEST)
    assert best.labels == DEFAULT_LABELS
    assert best.config.crop == 32 and best.config.arch == "mobilenet_v3_small"
    assert best.config.views == 2 and best.config.solved and best.info.weights_used == "none"
    assert best.weight_decay in STRENGTHS and best.temperature > 0
    assert set(best.val_metrics) == {"loss", "accuracy", "balanced_accuracy", "macro_f1"}
    manifest = Manifest.load(run_dir)
    # Out-of-fold logits of every train and val image choose and calibrate the linear head.
    dev = len(manifest.split("train")) + len(manifest.split("val"))
    assert best.val_logits.shape == (dev, 4) and len(best.val_targets) == dev
    assert best.split_sha256 == manifest.sha256()
    # 5 readable images per class: 3 train, 1 val, 1 test.
    assert best.class_counts["test"] == dict.fromkeys(DEFAULT_LABELS, 1)
    assert best.class_counts["val"] == dict.fromkeys(DEFAULT_LABELS, 1)
    assert load_checkpoint(run_dir / LAST).model_state.keys() == best.model_state.keys()

    skipped = (run_dir / "skipped.csv").read_text()
    assert "Winged Drones/broken.jpg" in skipped and "Flying Birds/readme.txt" in skipped
    assert not any("broken" in it.path or "readme" in it.path for it in manifest.items)
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["strength"] for h in history] == list(STRENGTHS)
    assert min(history, key=lambda h: h["oof_nll"])["strength"] == best.weight_decay
    assert len((run_dir / "history.csv").read_text().splitlines()) == len(STRENGTHS) + 1
    assert json.loads((run_dir / "config.json").read_text())["views"] == 2
    report = (run_dir / "report.md").read_text()
    assert "Not exported yet" in report and "by 5-fold cross-validation" in report
    assert "*chosen" in out and "Flying Birds" in out and "balance auto" in out


def test_resume_continues_exactly(data, tmp_path) -> None:
    # SGD + cosine + label smoothing + a weighted sampler: every piece of state resume must restore.
    common = [str(data), "--epochs", "3", "--unfreeze-last", "2", *TINY]
    common += ["--optimizer", "sgd", "--scheduler", "cosine", "--label-smoothing", "0.1"]
    common += ["--balance", "sampler"]
    assert run(*common, "--run-dir", str(tmp_path / "straight")) == 0
    assert run(*common, "--run-dir", str(tmp_path / "split"), "--stop-after", "1") == 0
    assert load_checkpoint(tmp_path / "split" / LAST).epoch == 1
    assert not (tmp_path / "split" / "report.md").exists()
    assert run("--resume", str(tmp_path / "split")) == 0

    a = load_checkpoint(tmp_path / "straight" / LAST)
    b = load_checkpoint(tmp_path / "split" / LAST)
    assert a.epoch == b.epoch == 3
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    assert (tmp_path / "split" / "report.md").is_file()


def test_ctrl_c_keeps_the_last_epoch_and_resumes(data, tmp_path) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "trainer.fit", str(data), "--run-dir", str(run_dir)]
    proc = subprocess.Popen(
        [*cmd, "--epochs", "200", "--unfreeze-last", "1", *TINY],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 150
    while not (run_dir / LAST).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"--resume {run_dir}" in out and "Traceback" not in err
    done = load_checkpoint(run_dir / LAST).epoch
    assert 1 <= done < 200
    assert json.loads((run_dir / "history.json").read_text())[-1]["epoch"] == done


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/skyclass-data"], "does not exist"),
        ([], "pass DATA"),
        (["--views", "-1", "x"], "--views must be >= 0"),
        (["--epochs", "0", "x"], "--epochs must be >= 1"),
        (
            ["--val-fraction", "0.5", "--test-fraction", "0.5", "x"],
            "must leave images for training",
        ),
        (["--weight-decay", "-1", "x"], "--weight-decay must be >= 0"),
        (["--weights", "/nonexistent/w.pth", "DATA"], "--weights /nonexistent/w.pth: no such file"),
    ],
)
def test_bad_input_is_one_line_without_traceback(data, args, message, capsys) -> None:
    args = [str(data) if a == "DATA" else a for a in args]
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainer.fit: error: ") and message in err and err.count("\n") == 1


def test_resume_refuses_corrupt_checkpoint_and_changed_options(data, tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert (
        run(str(data), "--run-dir", str(run_dir), "--epochs", "2", "--stop-after", "1", *TINY) == 0
    )
    capsys.readouterr()
    assert run("--resume", str(run_dir), "--lr", "0.5") == 2
    assert "--lr cannot change when resuming" in capsys.readouterr().err
    assert run("--resume", str(run_dir), str(data)) == 2
    assert "DATA cannot change when resuming" in capsys.readouterr().err
    last = run_dir / LAST
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert run("--resume", str(run_dir)) == 2
    err = capsys.readouterr().err
    assert "torn or corrupt" in err and err.count("\n") == 1
    assert run("--resume", str(tmp_path / "nothing-here")) == 2
