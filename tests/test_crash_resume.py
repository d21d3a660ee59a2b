"""Crash safety of training and export, with real ``python -m trainer.fit`` / ``trainer.export``
processes on a tiny generated dataset (``--weights none``: nothing is downloaded).

* A run killed with SIGKILL in the middle of an epoch, or halfway through writing a checkpoint,
  resumes with ``--resume`` and ends exactly where an uninterrupted run with the same seed ends:
  per-epoch metrics and final weights are compared for equality (tolerance 0: on one machine the
  CPU kernels are deterministic and every epoch reseeds from ``(seed, epoch)``).
* A corrupted checkpoint is refused with one clear line (exit 2), never a traceback; a torn one
  never replaces a whole one (the half-written bytes stay in a temp file).
* An export killed while writing ``model.onnx`` leaves the previous file byte-for-byte intact
  (write to a temp file, fsync, rename), and the finished file is readable by other users.

The "halfway through a write" crashes are placed deterministically: the process's own
``torch.save``/``onnx.save_model`` writes half the bytes, fsyncs and SIGKILLs itself.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from shared import DEFAULT_LABELS
from tests.imagegen import write_dataset
from tests.robust_support import ROOT, report
from tests.trainer_support import tiny_args
from trainer.learning.checkpoint import BEST, LAST, load_checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 3
# Tiny and fast on CPU, but every layer trains (BN statistics, dropout, AdamW, one-cycle LR).
FIT = [
    *tiny_args("none"), "--unfreeze-last", "all", "--batch-size", "4", "--epochs", str(EPOCHS),
    "--seed", "7", "--no-export",
]  # fmt: skip
# Timing and throughput differ between runs; everything else a run records must not.
_TIMING_KEYS = {"seconds", "train_images_per_s"}

# Runs a trainer module with its file writes sabotaged: the first write of a model (onnx) or of a
# checkpoint once last.pt exists (torch) stores half its bytes, fsyncs, and the process SIGKILLs
# itself: the worst moment for a crash, placed exactly.
_HALF_WRITE_THEN_DIE = """
import io, os, runpy, signal, sys
kind, module, *argv = sys.argv[1:]

def half_then_die(data, path):
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "onnx":
    import onnx
    onnx.save_model = lambda proto, path, **kw: half_then_die(proto.SerializeToString(), path)
else:
    import torch
    real_save = torch.save
    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and os.path.exists(os.path.join(os.path.dirname(f), "last.pt")):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            half_then_die(buffer.getvalue(), f)
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
sys.argv = [module, *argv]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


# One compute thread in every run compared (--threads 1, and these variables for the libraries
# underneath). The float sums of CPU kernels depend on how the work is split between threads, and
# the trainer's default picks one thread or one per core from the load average, so two runs could
# differ in the last bits (seen while writing this test: a resumed run's test loss differed in
# the 4th decimal). With one thread a run is a pure function of its seed, and a resumed run of its
# checkpoint, so equality can be exact and any difference means state the checkpoint lost.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def python(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def fit(*args: str) -> subprocess.CompletedProcess[str]:
    done = python("-m", "trainer.fit", *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 generated images per class, one visual style per class (learnable, all distinct)."""
    return write_dataset(tmp_path_factory.mktemp("crash-data"), DEFAULT_LABELS, 10)


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every crashed-and-resumed run must reproduce."""
    run_dir = tmp_path_factory.mktemp("crash-ref") / "run"
    fit(str(dataset), "--run-dir", str(run_dir), *FIT)
    return run_dir


def outcome(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor], int]:
    """A finished run's per-epoch metrics (timings dropped), final weights and best epoch."""
    last = load_checkpoint(run_dir / LAST)
    history = [{k: v for k, v in m.items() if k not in _TIMING_KEYS} for m in last.history]
    return history, last.model_state, load_checkpoint(run_dir / BEST).best_epoch


def assert_same_run(resumed: Path, reference: Path) -> None:
    history, weights, best_epoch = outcome(resumed)
    ref_history, ref_weights, ref_best_epoch = outcome(reference)
    assert len(history) == EPOCHS
    assert history == ref_history  # exact: losses, accuracies, F1, learning rates, per head
    assert best_epoch == ref_best_epoch
    assert weights.keys() == ref_weights.keys()
    differing = [k for k in weights if not torch.equal(weights[k], ref_weights[k])]
    assert differing == []


def test_sigkill_mid_epoch_then_resume_matches_the_uninterrupted_run(
    dataset: Path, reference: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer.fit", str(dataset), "--run-dir", str(run_dir), *FIT],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    # The epoch line is logged after epoch 1's checkpoint and reports: epoch 2 starts right then.
    for line in process.stdout:
        if line.split()[:2] == ["epoch", f"1/{EPOCHS}"]:
            break
    # A third of the reference's epoch 2: well inside the epoch here, whatever the machine speed.
    time.sleep(0.3 * load_checkpoint(reference / LAST).history[1]["seconds"])
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir / LAST).epoch == 1  # killed inside epoch 2

    resumed = fit("--resume", str(run_dir), "--no-export")
    assert f"resuming {run_dir} (after epoch 1 of {EPOCHS})" in resumed.stdout
    assert_same_run(run_dir, reference)
    report(request, f"crash: SIGKILL mid-epoch 2 of {EPOCHS}, resumed: metrics and weights equal")


def test_death_halfway_through_a_checkpoint_write_then_resume_matches(
    dataset: Path, reference: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    run_dir = tmp_path / "run"
    args = [str(dataset), "--run-dir", str(run_dir), *FIT]
    died = python("-c", _HALF_WRITE_THEN_DIE, "torch", "trainer.fit", *args)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    # The half-written file is a temp file beside the checkpoints; the checkpoints are whole.
    (torn,) = run_dir.glob(".*.pt.*.tmp")
    assert torn.stat().st_size > 0
    assert load_checkpoint(run_dir / LAST).epoch == 1

    fit("--resume", str(run_dir), "--no-export")
    assert_same_run(run_dir, reference)
    report(request, f"crash: died mid-write of {torn.name}; last.pt intact; resumed: runs equal")


def test_corrupted_checkpoint_is_refused_with_one_clear_line(reference: Path, tmp_path: Path):
    """A checkpoint whose bytes changed after it was written (tests/test_trainer_fit.py covers a
    truncated one in-process): the CLI names the file and says it is corrupt, exit 2."""
    run_dir = shutil.copytree(reference, tmp_path / "run")
    last = run_dir / LAST
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the model weights
    last.write_bytes(bytes(data))

    done = python("-m", "trainer.fit", "--resume", str(run_dir), "--no-export")
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert (
        line.startswith(f"trainer.fit: error: checkpoint {last}") and "torn or corrupt" in line
    ), line


def test_export_killed_while_writing_leaves_the_old_model_intact(
    reference: Path, exported_model: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    run_dir = shutil.copytree(reference, tmp_path / "run")
    target = run_dir / "model.onnx"
    old = exported_model.read_bytes()  # a different, valid model in place of a previous export
    target.write_bytes(old)

    died = python("-c", _HALF_WRITE_THEN_DIE, "onnx", "trainer.export", str(run_dir), "--no-int8")
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    (partial,) = run_dir.glob(".model.onnx.*.tmp")  # where the half model went
    assert target.read_bytes() == old

    done = python("-m", "trainer.export", str(run_dir), "--no-int8")
    assert done.returncode == 0, done.stderr[-2000:]
    new = target.read_bytes()
    assert new != old
    # The finished file is a complete model the service loads, readable by Lambda's user.
    from shared.predictor import Predictor

    assert Predictor.from_path(target).labels == DEFAULT_LABELS
    assert target.stat().st_mode & 0o044 == 0o044
    report(
        request,
        f"export: SIGKILL with {partial.stat().st_size:,} of {len(new):,} bytes written: "
        "model.onnx kept its old bytes; the re-run replaced it whole",
    )
