"""What the trainer's tests share: a random backbone saved as a weights file, the tiny options
that make a real ``trainer.fit`` run take seconds, and the call that runs it in-process."""

from pathlib import Path

import torch
import torchvision

from shared.cli import run_cli
from trainer.fit import main as fit_main

TINY_ARCH = "mobilenet_v3_small"


def save_random_backbone(path: Path, arch: str = TINY_ARCH, seed: int = 0) -> Path:
    """A randomly initialised torchvision backbone as a state-dict file (``--weights PATH``).

    The trainer refuses ``--weights none`` with a frozen backbone (random features make a useless
    model for users); tests still want the solved head's mechanics on cheap features, and say so
    by passing this file explicitly.
    """
    torch.manual_seed(seed)
    torch.save(torchvision.models.get_model(arch, weights=None).state_dict(), path)
    return path


def tiny_args(weights: Path | str, *, crop: int = 64, views: int = 2, **more: str) -> list[str]:
    """``trainer.fit`` options for a run of seconds: a small backbone at a small input, one
    thread (two runs with one seed are bit-identical), no loader processes, no bars."""
    args = [
        "--weights", str(weights), "--arch", TINY_ARCH, "--resize", str(crop + crop // 8),
        "--crop", str(crop), "--views", str(views), "--batch-size", "8", "--threads", "1",
        "--workers", "0", "--no-progress",
    ]  # fmt: skip
    for name, value in more.items():
        args += ["--" + name.replace("_", "-"), value]
    return args


def fit(*args: str | Path) -> int:
    """``python -m trainer.fit ARGS`` in this process; its exit status."""
    return run_cli(fit_main, [str(a) for a in args], prog="trainer.fit")
