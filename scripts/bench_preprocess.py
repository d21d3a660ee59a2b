"""Numpy preprocessing vs torchvision's eval transform, measured in the same run.

    .venv/bin/python scripts/bench_preprocess.py [--repeats 30]

Both sides start from the same decoded image (a numpy array for ours, the PIL image made from it
for torchvision) and end with the normalised float32 tensor. Prints the median time of each and
the ratio numpy / torchvision (target <= 1.0).
"""

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from shared import DEFAULT_SPEC
from shared.preprocess import preprocess
from trainer.augment import torchvision_eval


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: caches, BLAS threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def photo_like(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="numpy preprocess vs torchvision transform")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch_eval = torchvision_eval(DEFAULT_SPEC)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'image':>11} {'numpy ms':>9} {'torchvision ms':>15} {'ratio':>6}  target <= 1.0")
    worst = 0.0
    for width, height in ((300, 300), (4032, 3024)):
        rgb = photo_like(width, height)
        pil = Image.fromarray(rgb)
        ours = median_ms(lambda rgb=rgb: preprocess(rgb), args.repeats)
        theirs = median_ms(lambda pil=pil: torch_eval(pil), args.repeats)
        ratio = ours / theirs
        worst = max(worst, ratio)
        print(f"{width:>5}x{height:<5} {ours:9.2f} {theirs:15.2f} {ratio:6.2f}")
    print(f"worst ratio {worst:.2f} ({'meets' if worst <= 1.0 else 'misses'} the <= 1.0 target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
