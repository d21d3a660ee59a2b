"""Everything a run writes for people: metrics tables, plots, misclassified grids and report.md.

All files go through ``trainer.atomic`` (or ``trainer.plots``, which does too).
"""

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer.atomic import atomic_write_text
from trainer.images import load_rgb
from trainer.metrics import confusion_matrix, per_class
from trainer.plots import confusion_png, curves_png, image_grid_png

METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
PER_CLASS_CSV = "per_class.csv"
PER_CLASS_JSON = "per_class.json"
CURVES = "curves.png"
CONFUSION = "confusion_matrix.png"
CLASS_COUNTS = "class_counts.png"
SAMPLES = "samples.png"
SKIPPED = "skipped.csv"
OPTIONS = "options.json"
REPORT = "report.md"
IMBALANCE_RATIO = 1.5  # largest/smallest class above this gets a warning
THUMB = 160  # pixels: the longer side of images in the misclassified grids


def slug(label: str) -> str:
    """A file-name-safe form of a class label: ``Flying Birds`` -> ``flying_birds``."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "class"


def misclassified_name(label: str) -> str:
    return f"misclassified_{slug(label)}.png"


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def write_history(run_dir: Path, history: Sequence[dict[str, Any]]) -> None:
    """metrics.csv, metrics.json and curves.png for the epochs so far (rewritten each epoch)."""
    flat = [{k: v for k, v in h.items() if not isinstance(v, dict)} for h in history]
    columns = list(flat[0]) if flat else ["epoch"]
    atomic_write_text(run_dir / METRICS_CSV, _csv(flat, columns))
    write_json(run_dir / METRICS_JSON, list(history))
    if history:
        curves_png(run_dir / CURVES, history)


def class_table(counts: dict[str, dict[str, int]]) -> str:
    labels = list(next(iter(counts.values())))
    width = max(len(label) for label in labels)
    lines = [f"  {'class':<{width}}  " + "  ".join(f"{s:>6}" for s in counts)]
    lines += [
        f"  {label:<{width}}  " + "  ".join(f"{counts[s][label]:>6}" for s in counts)
        for label in labels
    ]
    return "\n".join(lines)


def imbalance_warning(counts: dict[str, int], balance: str) -> str | None:
    smallest, largest = min(counts.values()), max(counts.values())
    if smallest and largest / smallest > IMBALANCE_RATIO and balance == "none":
        return (
            f"warning: classes are imbalanced ({largest} vs {smallest} training images); "
            "consider --balance sampler or --balance loss"
        )
    return None


def per_class_table(table: dict[str, dict[str, float]]) -> str:
    width = max(len(label) for label in table)
    lines = [f"  {'class':<{width}}  precision  recall     f1  support"]
    lines += [
        f"  {label:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  "
        f"{r['support']:7d}"
        for label, r in table.items()
    ]
    return "\n".join(lines)


def _thumbnail(path: Path) -> np.ndarray:
    img = Image.fromarray(load_rgb(path))
    img.thumbnail((THUMB, THUMB))
    return np.asarray(img)


def misclassified_grids(
    run_dir: Path,
    items: Sequence[tuple[Path, int]],
    probabilities: np.ndarray,
    labels: Sequence[str],
    limit: int,
) -> list[Path]:
    """One grid per true class: its test images the model got wrong, most confident first."""
    predicted = probabilities.argmax(1)
    paths = []
    for c, label in enumerate(labels):
        wrong = [i for i, (_, y) in enumerate(items) if y == c and predicted[i] != c]
        wrong.sort(key=lambda i: -probabilities[i, predicted[i]])
        shown = wrong[:limit]
        titles = [
            f"{items[i][0].name[:22]}\ntrue {label}\npred {labels[predicted[i]]} "
            f"{probabilities[i, predicted[i]]:.0%}"
            for i in shown
        ]
        title = f"{label}: {len(wrong)} of {sum(1 for _, y in items if y == c)} test images misclassified"
        if len(wrong) > len(shown):
            title += f" (showing the {len(shown)} most confident)"
        paths.append(
            image_grid_png(
                run_dir / misclassified_name(label),
                [_thumbnail(items[i][0]) for i in shown],
                titles,
                title,
                colors=["firebrick"] * len(shown),
            )
        )
    return paths


def final_reports(
    run_dir: Path,
    items: Sequence[tuple[Path, int]],
    probabilities: np.ndarray,
    labels: Sequence[str],
    limit: int,
) -> dict[str, dict[str, float]]:
    """Confusion matrix, per-class table and misclassified grids for the kept (best) model."""
    targets = np.array([y for _, y in items], dtype=np.int64)
    cm = confusion_matrix(targets, probabilities.argmax(1), len(labels))
    table = per_class(cm, labels)
    accuracy = float(np.trace(cm) / max(cm.sum(), 1))
    confusion_png(run_dir / CONFUSION, cm, labels, f"test set, accuracy {accuracy:.1%}")
    rows = [{"class": label, **row} for label, row in table.items()]
    columns = ["class", "precision", "recall", "f1", "support"]
    atomic_write_text(run_dir / PER_CLASS_CSV, _csv(rows, columns))
    write_json(run_dir / PER_CLASS_JSON, {"confusion_matrix": cm.tolist(), "per_class": table})
    misclassified_grids(run_dir, items, probabilities, labels, limit)
    return table


def report_markdown(facts: dict[str, Any]) -> str:
    """report.md: what was trained on what, how well, and where each artifact is."""
    best = facts["best"]
    lines = [
        f"# Training report: {facts['run_id']}",
        "",
        f"- Data: `{facts['data']}` ({facts['layout']}); labels: {', '.join(facts['labels'])}",
        f"- Model: {facts['arch']}, weights {facts['weights_used']}; {facts['trainable']}",
        f"- Input: resize {facts['spec']['resize']}, crop {facts['spec']['crop']}; "
        f"augmentation: {facts['augment']}",
        f"- Optimiser: {facts['optimizer']}; {facts['epochs_done']} of {facts['epochs']} epochs; "
        f"device {facts['device']}",
        f"- Git commit: `{facts['git_commit']}`; created {facts['created']}",
        "",
        "## Result",
        "",
        f"Best test accuracy **{best['test_accuracy']:.2%}** at epoch {best['epoch']} "
        f"(test loss {best['test_loss']:.4f}; train accuracy {best['train_accuracy']:.2%}). "
        "The kept model (`best.pt`) is the one with the best test accuracy; the tables and pictures "
        "below describe it.",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {label} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
        for label, r in facts["per_class"].items()
    ]
    lines += [
        "",
        "## Data",
        "",
        "| class | " + " | ".join(facts["class_counts"]) + " |",
        "| --- |" + " ---: |" * len(facts["class_counts"]),
    ]
    lines += [
        f"| {label} | "
        + " | ".join(str(facts["class_counts"][s][label]) for s in facts["class_counts"])
        + " |"
        for label in facts["labels"]
    ]
    lines += [
        "",
        f"{facts['skipped']} file(s) skipped or removed from test (see `{SKIPPED}`).",
        "",
        f"![class counts]({CLASS_COUNTS})",
        "",
        f"What the network sees in training (augmented): ![samples]({SAMPLES})",
        "",
        "## Training curves",
        "",
        f"![curves]({CURVES}) (per epoch: `{METRICS_CSV}`, `{METRICS_JSON}`)",
        "",
        "## Confusion matrix",
        "",
        f"![confusion matrix]({CONFUSION}) (per class: `{PER_CLASS_CSV}`, `{PER_CLASS_JSON}`)",
        "",
        "## Misclassified test images",
        "",
    ]
    lines += [f"- {label}: ![{label}]({misclassified_name(label)})" for label in facts["labels"]]
    lines += [
        "",
        "## Files",
        "",
        f"`best.pt` (kept model), `last.pt` (resume point), `split.json` (the split), `{OPTIONS}` "
        "(resolved options; rerun or `--resume` with them).",
        "",
    ]
    return "\n".join(lines)
