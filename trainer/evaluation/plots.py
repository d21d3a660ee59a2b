"""The run's pictures. Figures are built without pyplot (no global state, no display needed) and
saved through ``atomic_path``, so an interrupted run never leaves a half-written PNG."""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from trainer.common.files import atomic_path
from trainer.evaluation.calibration import ReliabilityBin


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


def curves_png(path: Path, history: Sequence[dict], select: str = "balanced_accuracy") -> Path:
    """Per epoch: loss and accuracy (train, val), and the val selection metric."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(14, 3.6))
    panels = (
        ("loss", ("train_loss", "val_loss")),
        ("accuracy", ("train_accuracy", "val_accuracy")),
        (f"val {select.replace('_', ' ')}", (f"val_{select}",)),
    )
    for k, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        for key, style in zip(keys, ("o-", "s-"), strict=False):
            ax.plot(epochs, [h[key] for h in history], style, markersize=3, label=key.split("_")[0])
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion_png(
    path: Path,
    cm: np.ndarray,
    labels: Sequence[str],
    title: str,
    columns: Sequence[str] | None = None,
) -> Path:
    """``cm[true, answered]``; ``columns`` name the answers when they are not just ``labels``
    (an "unknown" column, say)."""
    columns = list(columns or labels)
    size = max(4.5, 1.2 * len(columns) + 2)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        color = "white" if value > cm.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=color)
    ax.set_xticks(np.arange(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.set_xlabel("answered" if columns != list(labels) else "predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def reliability_png(
    path: Path,
    bins_before: Sequence[ReliabilityBin],
    bins_after: Sequence[ReliabilityBin] | None = None,
    *,
    ece_before: float | None = None,
    ece_after: float | None = None,
    title: str = "Reliability",
) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin (dot area ~ images), the
    diagonal being perfect calibration; optional second series (after temperature scaling)."""
    fig = Figure(figsize=(9.5, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    series = [("before" if bins_after is not None else "model", bins_before, ece_before, "C0")]
    if bins_after is not None:
        series.append(("after", bins_after, ece_after, "C1"))
    total = max(1, sum(b.count for b in bins_before))
    for name, table, ece, color in series:
        filled = [b for b in table if b.count]
        label = name if ece is None else f"{name} (ECE {ece:.3f})"
        ax.plot(
            [b.confidence for b in filled], [b.accuracy for b in filled], "-", color=color, lw=1
        )
        ax.scatter(
            [b.confidence for b in filled],
            [b.accuracy for b in filled],
            s=[20 + 400 * b.count / total for b in filled],
            color=color,
            alpha=0.7,
            label=label,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean top-1 confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")

    hist = fig.add_subplot(1, 2, 2)
    width = bins_before[0].high - bins_before[0].low if bins_before else 1.0
    for k, (name, table, _, color) in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * width / len(series)
        hist.bar(
            [(b.low + b.high) / 2 + offset for b in table],
            [b.count for b in table],
            width / len(series),
            color=color,
            alpha=0.8,
            label=name,
        )
    hist.set_xlim(0, 1)
    hist.set_xlabel("top-1 confidence")
    hist.set_ylabel("images")
    hist.set_title("Confidence histogram")
    hist.legend(fontsize=8)
    return _save(fig, path)


def score_histogram_png(
    path: Path,
    groups: dict[str, Sequence[float]],
    *,
    threshold: float | None = None,
    title: str = "Scores",
    xlabel: str = "top-1 confidence",
    bins: int = 20,
) -> Path:
    """Overlaid histograms of a score per group (e.g. known classes vs negatives), each
    normalised to its own size so a small group stays visible; optional threshold line."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.add_subplot()
    everything = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in groups.values()])
    # Confidences live in [0, 1]; any other score (a logit, an energy) gets its own range.
    low = min(0.0, float(everything.min())) if everything.size else 0.0
    high = max(1.0, float(everything.max())) if everything.size else 1.0
    edges = np.linspace(low, high, bins + 1)
    for name, scores in groups.items():
        values = np.asarray(scores, dtype=np.float64)
        if values.size:
            weights = np.full(values.size, 1.0 / values.size)
            ax.hist(values, edges, weights=weights, alpha=0.55, label=f"{name} (n={values.size})")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of group")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
