"""The run's pictures. Figures are built without pyplot (no global state, no display needed) and
saved through ``atomic_path``, so an interrupted run never leaves a half-written PNG."""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from trainer.atomic import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def class_counts_png(path: Path, counts: dict[str, dict[str, int]]) -> Path:
    """Grouped bars: images per class in each split."""
    labels = list(next(iter(counts.values())))
    fig = Figure(figsize=(max(5, 1.6 * len(labels)), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / len(counts)
    x = np.arange(len(labels))
    for k, (split, per_label) in enumerate(counts.items()):
        values = [per_label[label] for label in labels]
        bars = ax.bar(x + (k - (len(counts) - 1) / 2) * width, values, width, label=split)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x, labels, rotation=15, ha="right")
    ax.set_ylabel("images")
    ax.set_title("Images per class")
    ax.legend()
    return _save(fig, path)


def image_grid_png(
    path: Path,
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    title: str,
    *,
    colors: Sequence[str] | None = None,
    columns: int = 6,
) -> Path:
    """A grid of RGB images with a caption each (or a note when there are none)."""
    if not images:
        fig = Figure(figsize=(5, 1.2))
        fig.text(0.5, 0.5, f"{title}\n(none)", ha="center", va="center")
        return _save(fig, path)
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    fig = Figure(figsize=(2.1 * columns, 2.3 * rows + 0.4))
    for i, (image, caption) in enumerate(zip(images, titles, strict=True)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(image)
        ax.set_title(caption, fontsize=7, color=colors[i] if colors else "black")
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def curves_png(path: Path, history: Sequence[dict[str, float]]) -> Path:
    """Loss and accuracy per epoch, train vs test."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.6))
    for k, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, k + 1)
        for split, style in (("train", "o-"), ("test", "s-")):
            ax.plot(epochs, [h[f"{split}_{metric}"] for h in history], style, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion_png(path: Path, cm: np.ndarray, labels: Sequence[str], title: str) -> Path:
    size = max(4.5, 1.2 * len(labels) + 2)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        color = "white" if value > cm.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=color)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)
