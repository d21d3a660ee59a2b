"""Section 5, training: two real ``python -m trainer.fit`` runs on a synthetic dataset.

They run in the bench's own process through ``trainer.fit.main`` (the CLI's function: same
options, same code path), which spares two torch imports; nothing else runs meanwhile.

The trainer measures itself (``trainer.loop``): every epoch's ``metrics.json`` entry holds the
wall-clock images/s of the training pass and the images/s of the backbone forward alone inside that
same pass (``train_backbone_images_per_s``; frozen backbone, so the head and the data pipeline are
the rest). Their ratio says how much of the epoch the data loading and the head cost: 1.0 would be
a loop that only waits for the backbone. A second run with ``--cache-features`` gives the cached
epoch time and the one-off cost of building the cache (``timing.json``).
"""

import contextlib
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.reports import METRICS_JSON
from trainer.synthetic import generate

TIMING_JSON = "timing.json"  # written by trainer.fit's finish() when the run has timings


@dataclass(frozen=True)
class TrainSettings:
    per_class: int
    image_size: int
    epochs: int
    batch_size: int
    cache_views: int


def _fit(data: Path, run_dir: Path, s: TrainSettings, *extra: str) -> dict[str, Any]:
    argv = [
        str(data), "--run-dir", str(run_dir), "--weights", "none", "--epochs", str(s.epochs),
        "--batch-size", str(s.batch_size), "--seed", "0", "--no-export", "--no-progress", *extra,
    ]  # fmt: skip
    from trainer import fit  # lazy: the other sections do not need the trainer's imports

    # The trainer logs to stdout, which is the bench's table: send its lines to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        status = fit.main(argv)
    if status != 0:
        raise RuntimeError(f"python -m trainer.fit {' '.join(argv)} returned {status}")
    history = json.loads((run_dir / METRICS_JSON).read_text(encoding="utf-8"))
    timing = run_dir / TIMING_JSON
    return {
        "command": "python -m trainer.fit " + " ".join(argv),
        "history": [{k: v for k, v in h.items() if not isinstance(v, dict)} for h in history],
        "timings": json.loads(timing.read_text(encoding="utf-8")) if timing.is_file() else {},
    }


def steady(history: list[dict[str, Any]], key: str) -> float:
    """Median of ``key`` over the epochs after the first (the first also warms caches and thread
    pools up), or the only epoch's value."""
    epochs = history[1:] or history
    return statistics.median(h[key] for h in epochs)


def measure(work: Path, s: TrainSettings) -> dict[str, Any]:
    data = generate(work / "data", per_class=s.per_class, seed=0, size=s.image_size)
    images = _fit(data, work / "run-images", s)
    cached = _fit(data, work / "run-cached", s, "--cache-features", str(s.cache_views))
    data_note = f"{s.per_class} synthetic {s.image_size}px JPEGs per class (trainer.synthetic)"
    import torch  # already imported by the trainer

    # trainer.fit picks its torch thread count (one thread on a busy machine): record it.
    return {
        "data": data_note,
        "torch_threads": torch.get_num_threads(),
        "images": images,
        "cached": cached,
    }
