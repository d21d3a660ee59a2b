"""The misclassified images of a scored set, one grid per class, most confident mistakes first:
the mistakes the model is surest of are the ones a reviewer should see."""

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from shared.decode import decode
from trainer.evaluation.metrics import Summary
from trainer.evaluation.plots import image_grid_png
from trainer.evaluation.scoring import Evaluation

_THUMB = 192  # pixels, longer side of a thumbnail


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "class"


def misclassified_files(labels: Sequence[str]) -> dict[str, str]:
    """``{label: file name}`` of the misclassified grids (unique even if two slugs collide)."""
    names: dict[str, str] = {}
    for i, label in enumerate(labels):
        name = f"misclassified_{_slug(label)}.png"
        if name in names.values():
            name = f"misclassified_{_slug(label)}_{i}.png"
        names[label] = name
    return names


def _thumbnail(path: Path) -> np.ndarray:
    image = Image.fromarray(decode(path.read_bytes(), min_short_side=_THUMB))
    image.thumbnail((_THUMB, _THUMB))
    return np.asarray(image)


def write_misclassified(
    out_dir: Path, evaluation: Evaluation, summary: Summary, limit: int
) -> dict[str, str]:
    """One grid per class present: its wrongly predicted images, most confident first (the
    mistakes the model is surest of are the ones a reviewer should see)."""
    written = {}
    files = misclassified_files(evaluation.labels)
    confidences = evaluation.confidences
    for c, row in enumerate(summary.per_class):
        if row.absent:
            continue
        wrong = np.flatnonzero((evaluation.targets == c) & (evaluation.predictions != c))
        wrong = wrong[np.argsort(-confidences[wrong], kind="stable")][:limit]
        captions = [
            f"{evaluation.paths[i].name[:24]}\n-> {evaluation.labels[evaluation.predictions[i]]}"
            f" {confidences[i]:.2f}"
            for i in wrong
        ]
        shown = (
            f" (the {len(wrong)} most confident)" if len(wrong) < row.support - row.correct else ""
        )
        image_grid_png(
            out_dir / files[row.label],
            [_thumbnail(evaluation.paths[i]) for i in wrong],
            captions,
            f"{row.label}: {row.support - row.correct} of {row.support} misclassified{shown}",
            colors=["crimson"] * len(wrong),
        )
        written[row.label] = files[row.label]
    return written
