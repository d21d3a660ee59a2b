"""Real tiny ``trainer.fit`` runs: every artifact, exact resume in both regimes, Ctrl-C, and
one-line errors, for options typed on the command line or built in Python.

Runs use generated 48x48 images, a random mobilenet_v3_small saved as a weights file (nothing
downloaded) at a 32x32 input, so each takes a few seconds on two cores.
"""

import contextlib
import dataclasses
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import DEFAULT_LABELS
from shared.cli import UsageError
from shared.paths import REPO
from tests.trainer_support import fit, tiny_args
from trainer.data.manifest import Manifest
from trainer.data.synthetic import generate
from trainer.learning.checkpoint import BEST, LAST, load_checkpoint
from trainer.learning.config import RunFlags, TrainConfig
from trainer.learning.solved_head import FEATURES


@pytest.fixture(scope="module")
def tiny(random_weights: Path) -> list[str]:
    return [*tiny_args(random_weights, crop=32), "--no-export"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = generate(tmp_path_factory.mktemp("fit") / "data", per_class=5, size=48)
    (root / "Winged Drones" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Flying Birds" / "readme.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def solved(
    data: Path, tiny: list[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """An uninterrupted run of the default regime (the solved head), and what it printed."""
    run_dir = tmp_path_factory.mktemp("solved") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = fit(data, "--run-dir", run_dir, *tiny)
    assert status == 0, out.getvalue()
    return run_dir, out.getvalue()


def test_tiny_run_writes_every_report_and_a_complete_checkpoint(solved, random_weights) -> None:
    run_dir, out = solved
    expected = {
        BEST, LAST, "split.json", "config.json", "skipped.csv", "class_counts.png",
        "samples.png", "history.csv", "history.json", "unknown_rule.png", "report.md", "timing.json",
    }  # fmt: skip
    assert expected <= {p.name for p in run_dir.iterdir()}
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    for png in run_dir.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = load_checkpoint(run_dir / BEST)
    assert best.labels == DEFAULT_LABELS
    assert best.config.crop == 32 and best.config.arch == "mobilenet_v3_small"
    assert best.config.views == 2 and best.config.regime_name == "solved head"
    assert best.info.weights_used == str(random_weights)
    assert best.weight_decay == best.config.head_c and best.temperature > 0
    assert set(best.val_metrics) == {"loss", "accuracy", "balanced_accuracy", "macro_f1"}
    manifest = Manifest.load(run_dir)
    # Out-of-fold logits of every train and val image choose and calibrate the linear head.
    dev = len(manifest.split("train")) + len(manifest.split("val"))
    assert best.val_logits.shape == (dev, 4) and len(best.val_targets) == dev
    assert best.split_sha256 == manifest.sha256()
    # 5 readable images per class: too few for a test split (auto), so 4 train and 1 val, and the
    # estimate comes from cross-validating the recipe over all of them.
    assert best.class_counts["test"] == dict.fromkeys(DEFAULT_LABELS, 0)
    assert best.class_counts["val"] == dict.fromkeys(DEFAULT_LABELS, 1)
    assert best.estimate is not None and len(best.estimate["predicted"]) == dev
    # The "none of these" rule travels in the model; its out-of-fold scores in the checkpoint.
    assert best.rejection["method"] == "nearest_photo"
    assert len(best.rejection["known_scores"]) == dev
    assert "known_score.references" in best.model_state
    assert load_checkpoint(run_dir / LAST).model_state.keys() == best.model_state.keys()

    skipped = (run_dir / "skipped.csv").read_text()
    assert "Winged Drones/broken.jpg" in skipped and "Flying Birds/readme.txt" in skipped
    assert not any("broken" in it.path or "readme" in it.path for it in manifest.items)
    history = json.loads((run_dir / "history.json").read_text())
    assert [set(h) >= {"oof_accuracy", "oof_macro_f1", "temperature"} for h in history] == [True]
    assert history[0]["oof_accuracy"] == pytest.approx(best.val_metrics["accuracy"])
    assert len((run_dir / "history.csv").read_text().splitlines()) == 2
    assert json.loads((run_dir / "config.json").read_text())["views"] == 2
    report = (run_dir / "report.md").read_text()
    assert "Not exported yet" in report and "by 5-fold cross-validation" in report
    assert "out of fold: " in out and "Flying Birds" in out and "balance auto: logit" in out
    assert not (run_dir / FEATURES).exists()  # the feature cache is only ever a resume point


def test_solved_head_stopped_and_resumed_matches_the_uninterrupted_run(
    data, tiny, solved, tmp_path
) -> None:
    run_dir = tmp_path / "split"
    assert fit(data, "--run-dir", run_dir, *tiny, "--stop-after", "1") == 0
    # One of the four feature views (served, mirror, two augmented) is saved; nothing is solved.
    assert [p.name for p in (run_dir / FEATURES).iterdir()] == ["view-0.pt"]
    assert not (run_dir / BEST).exists() and not (run_dir / "report.md").exists()
    assert fit("--resume", run_dir, "--no-progress") == 0
    a, b = (load_checkpoint(r / BEST) for r in (solved[0], run_dir))
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert (a.weight_decay, a.temperature) == (b.weight_decay, b.temperature)
    assert np.array_equal(a.val_logits, b.val_logits)
    assert (run_dir / "report.md").is_file() and not (run_dir / FEATURES).exists()
    # A finished run resumed again is finished: it writes its reports, it trains nothing.
    assert fit("--resume", run_dir, "--no-progress") == 0
    assert torch.equal(
        load_checkpoint(run_dir / BEST).model_state["head.2.weight"], a.model_state["head.2.weight"]
    )


def test_resume_continues_exactly(data, tiny, tmp_path) -> None:
    # SGD + cosine + label smoothing + a weighted sampler: every piece of state resume must restore.
    common = [str(data), "--epochs", "3", "--unfreeze-last", "2", *tiny]
    common += ["--optimizer", "sgd", "--scheduler", "cosine", "--label-smoothing", "0.1"]
    common += ["--balance", "sampler"]
    assert fit(*common, "--run-dir", str(tmp_path / "straight")) == 0
    assert fit(*common, "--run-dir", str(tmp_path / "split"), "--stop-after", "1") == 0
    assert load_checkpoint(tmp_path / "split" / LAST).epoch == 1
    assert not (tmp_path / "split" / "report.md").exists()
    assert fit("--resume", str(tmp_path / "split")) == 0

    a = load_checkpoint(tmp_path / "straight" / LAST)
    b = load_checkpoint(tmp_path / "split" / LAST)
    assert a.epoch == b.epoch == 3
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    assert (tmp_path / "split" / "report.md").is_file()


def test_ctrl_c_keeps_the_last_epoch_and_resumes(data, tiny, tmp_path) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "trainer.fit", str(data), "--run-dir", str(run_dir)]
    proc = subprocess.Popen(
        [*cmd, "--epochs", "200", "--unfreeze-last", "1", *tiny],
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
        (["--weights", "none", "DATA"], "add --unfreeze-last all"),
    ],
)
def test_bad_input_is_one_line_without_traceback(data, args, message, capsys) -> None:
    args = [str(data) if a == "DATA" else a for a in args]
    assert fit(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainer.fit: error: ") and message in err and err.count("\n") == 1


def test_resume_refuses_corrupt_checkpoint_and_changed_options(
    data, tiny, tmp_path, capsys
) -> None:
    run_dir = tmp_path / "run"
    assert fit(data, "--run-dir", run_dir, "--stop-after", "1", *tiny) == 0
    capsys.readouterr()
    assert fit("--resume", str(run_dir), "--lr", "0.5") == 2
    assert "--lr cannot change when resuming" in capsys.readouterr().err
    assert fit("--resume", str(run_dir), str(data)) == 2
    assert "DATA cannot change when resuming" in capsys.readouterr().err
    last = run_dir / LAST
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert fit("--resume", str(run_dir)) == 2
    err = capsys.readouterr().err
    assert "torn or corrupt" in err and err.count("\n") == 1
    assert fit("--resume", str(tmp_path / "nothing-here")) == 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainConfig(weight_decay="1e-4"), "--weight-decay must be a number, got '1e-4'"),
        (lambda: dataclasses.replace(TrainConfig(), epochs="3"), "--epochs must be a whole number"),
        (lambda: TrainConfig(epochs=True), "--epochs must be a whole number, got True"),
        (lambda: TrainConfig(hflip="no"), "--hflip must be true/false"),
        (lambda: TrainConfig(data=Path("photos")), "DATA must be text"),
        (lambda: TrainConfig(lr="fast"), "--lr must be a number, got 'fast'"),
        (lambda: TrainConfig(weights="none"), "add --unfreeze-last all"),
        (lambda: RunFlags(threads="2"), "--threads must be a whole number"),
        (lambda: TrainConfig.from_dict({**TrainConfig().to_dict(), "seed": 1.5}), "--seed"),
    ],
)
def test_configs_are_checked_by_type_however_they_are_built(build, message) -> None:
    with pytest.raises(UsageError) as caught:
        build()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_whole_number_is_a_fine_float_and_is_stored_as_one() -> None:
    config = TrainConfig(weight_decay=0, lr=1, crop_scale=1)
    assert isinstance(config.weight_decay, float) and isinstance(config.lr, float)
    assert TrainConfig(weights="none", unfreeze_last=-1).frozen is False
