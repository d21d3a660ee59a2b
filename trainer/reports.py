"""Everything a run writes for people: history, pictures of the data, and report.md.

``report.md`` leads with the served model's score on the test split (written by the export, the
only time test is scored) and then says how the model was chosen on val. All files go through
``trainer.atomic`` (or ``trainer.plots``, which does too).
"""

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.atomic import atomic_write_text
from trainer.augment import denormalize
from trainer.checkpoint import Checkpoint
from trainer.config import TrainConfig
from trainer.loop import make_loader
from trainer.manifest import SPLITS, Manifest
from trainer.plots import class_counts_png, cross_validation_png, curves_png, image_grid_png

HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
METRICS_JSON = "metrics.json"
CURVES = "curves.png"
CLASS_COUNTS = "class_counts.png"
SAMPLES = "samples.png"
SKIPPED = "skipped.csv"
CONFIG = "config.json"
TIMING = "timing.json"
REPORT = "report.md"
TEST_DIR = "test"
SAMPLE_GRID = 18
NO_TEST = (
    "No test split (`--test-fraction 0`, or no `test/` folder): no unbiased estimate of how well "
    "this model does exists. The val figures chose the model and are optimistic."
)


def slug(label: str) -> str:
    """A file-name-safe form of a class label: ``Flying Birds`` -> ``flying_birds``."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "class"


def scored_on(config: TrainConfig) -> str:
    """The images the run's choices (temperature, threshold) were made on, in words."""
    if config.solved:
        return "out-of-fold scores of the train + val images (5-fold cross-validation)"
    return "the val images"


def val_figure_note(config: TrainConfig) -> str:
    """What a figure of the exported model on the val images means for this run."""
    if config.solved:
        return (
            "the final head was refitted on train + val, so this is not a validation score: it "
            "only compares INT8 with fp32"
        )
    return "val chose the epoch, so it is optimistic"


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def chosen_text(best: Checkpoint) -> str:
    """How the kept model was chosen, in one sentence, with the figures that chose it."""
    c, figures = (
        best.config,
        ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in best.val_metrics.items()),
    )
    if c.solved:
        return (
            f"L2 strength {best.weight_decay:g} and temperature {best.temperature or 1:.3f} by "
            f"5-fold cross-validation over train + val (every image scored by a head that did "
            f"not see it): out-of-fold {figures}. These figures chose the model, so they are "
            "slightly optimistic."
        )
    return (
        f"Epoch {best.best_epoch} of {c.epochs} by val {c.select.replace('_', ' ')} (ties: lower "
        f"val loss): {figures}. These figures chose the model, so they are optimistic."
    )


def write_history(
    run_dir: Path, history: Sequence[dict[str, Any]], select: str, *, curves: bool = True
) -> None:
    """history.csv, history.json (and curves.png) for the epochs so far."""
    flat = [{k: v for k, v in h.items() if not isinstance(v, dict)} for h in history]
    buffer = io.StringIO()
    columns = list(flat[0]) if flat else ["epoch"]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(run_dir / HISTORY_CSV, buffer.getvalue())
    write_json(run_dir / HISTORY_JSON, list(history))
    if history and curves:
        if "strength" in history[0]:
            cross_validation_png(run_dir / CURVES, history)
        else:
            curves_png(run_dir / CURVES, history, select)


def layout(manifest: Manifest) -> str:
    if manifest.presplit:
        carved = (
            ""
            if manifest.val_fraction == 0
            else f", val carved from train ({manifest.val_fraction:.0%})"
        )
        return "pre-split folders" + carved
    return (
        f"split train/val/test {1 - manifest.val_fraction - manifest.test_fraction:.0%}/"
        f"{manifest.val_fraction:.0%}/{manifest.test_fraction:.0%} by class, seed {manifest.seed}, "
        "near-duplicates kept together"
    )


def class_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    labels = list(next(iter(counts.values())))
    width = max(len(label) for label in labels)
    lines = [f"  {'class':<{width}}  " + "  ".join(f"{s:>6}" for s in counts)]
    lines += [
        f"  {label:<{width}}  " + "  ".join(f"{counts[s][label]:>6}" for s in counts)
        for label in labels
    ]
    return "\n".join(lines)


def counts_table(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    labels = list(next(iter(counts.values())))
    lines = ["| class | " + " | ".join(SPLITS) + " |", "| --- |" + " ---: |" * len(SPLITS)]
    lines += [f"| {lb} | " + " | ".join(str(counts[s][lb]) for s in SPLITS) + " |" for lb in labels]
    return lines


def balance_line(counts: Mapping[str, int], requested: str, resolved: str) -> str:
    smallest, largest = min(counts.values()), max(counts.values())
    ratio = f"largest/smallest training class {largest}/{smallest}"
    if requested == "auto":
        what = "class-weighted loss" if resolved == "loss" else "no balancing (within 1.5x)"
        return f"balance auto: {what} ({ratio})"
    return f"balance {resolved} ({ratio})"


def data_pictures(run_dir: Path, manifest: Manifest, train_set: Any, config: TrainConfig) -> None:
    """class_counts.png, and samples.png: augmented training images as the network sees them."""
    class_counts_png(run_dir / CLASS_COUNTS, manifest.counts())
    loader = make_loader(train_set, SAMPLE_GRID, seed=config.seed, workers=0, shuffle=True)
    x, y = next(iter(loader))
    image_grid_png(
        run_dir / SAMPLES,
        list(denormalize(x, config.spec)),
        [(*manifest.labels, "none of these")[int(i)] for i in y],
        f"augmented training samples ({config.augment.describe()})",
    )


def describe(config: TrainConfig, device: torch.device) -> str:
    trainable = (
        "backbone frozen, only the head trains"
        if config.frozen
        else f"last {'all' if config.unfreeze_last < 0 else config.unfreeze_last} backbone blocks "
        f"fine-tuned (lr x{config.backbone_lr_scale:g})"
    )
    if config.solved:
        recipe = (
            f"linear head solved on the served view + {config.views} augmented views of every "
            "train and val image, L2 strength and temperature by 5-fold cross-validation"
        )
    else:
        recipe = (
            f"{config.head} head, {config.optimizer} lr {config.learning_rate:g}, "
            f"{config.scheduler}, weight decay {config.weight_decay:g}, {config.epochs} epochs, "
            f"best on val {config.select}"
        )
    return (
        f"{config.arch} ({config.weights} weights), {trainable}; input "
        f"{config.resize}->{config.crop}; {recipe}; device {device}"
    )


def _estimate(e: Mapping[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    return f"{e['value']:.1%} [{e['low']:.1%}, {e['high']:.1%}]"


def test_section(test: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    """The served model's test figures with their 95% intervals, and a per-class table."""
    lines = [
        f"{test['n']} test images. Accuracy **{_estimate(test['accuracy'])}**, balanced accuracy "
        f"**{_estimate(test['balanced_accuracy'])}**, macro-F1 {_estimate(test['macro_f1'])} "
        "(95% intervals: Wilson for proportions; see docs/training.md).",
        "",
        "| class | test images | recall | precision |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = {row["label"]: row for row in test["per_class"]}
    for label in labels:
        row = rows[label]
        lines.append(
            f"| {label} | {row['support']} | {_estimate(row.get('recall'))} | "
            f"{_estimate(row.get('precision'))} |"
        )
    if test.get("absent"):
        lines.append("")
        lines.append(
            f"No test image of {', '.join(test['absent'])}: no figure for it, and it is left out "
            "of balanced accuracy and macro-F1."
        )
    lines.append("")
    return lines


def open_set_section(metrics: Mapping[str, Any]) -> list[str]:
    """How the served model answers "none of these": the rule, then val and test figures."""
    rule, test = metrics["rejection"], metrics.get("test")
    val = rule["details"]["val"]
    lines = [
        f"Rule: `{rule['method']}`; an image whose `{rule['score']}` is below "
        f"{rule['threshold']:.4f} is answered `unknown`. The threshold was set on "
        f"{rule['details'].get('set_on', 'the val images')} so that {rule['accept_rate']:.0%} "
        "of the in-class images there pass.",
        "",
        "| split | in-class images accepted | negatives answered unknown | AUROC |",
        "| --- | ---: | ---: | ---: |",
    ]
    set_on = (
        "train + val, out of fold" if "out-of-fold" in rule["details"].get("set_on", "") else "val"
    )
    for name, sep in ((set_on, val), ("test", (test or {}).get("open_set"))):
        if not sep:
            continue
        negatives = (
            f"{sep['negatives_rejected']:.1%} of {sep['negatives']}" if sep["negatives"] else "-"
        )
        auroc = f"{sep['auroc']:.3f}" if sep["auroc"] is not None else "-"
        lines.append(
            f"| {name} | {sep['in_class_accepted']:.1%} of {sep['in_class']} | {negatives} | "
            f"{auroc} |"
        )
    if test:
        lines += [
            "",
            f"Closed-set test accuracy {test['accuracy']['value']:.1%} without rejection, "
            f"{test['accuracy_with_rejection']:.1%} with it (a rejected photo of a class counts "
            "as wrong).",
        ]
    if not val["negatives"]:
        lines += [
            "",
            "Trained without negatives: the score is the top class probability, which tells "
            "other things apart poorly. `--negatives DIR` (photos of none of the classes) "
            "teaches the model what to reject.",
        ]
    return [*lines, ""]


def test_line(test: Mapping[str, Any] | None, served: str) -> str:
    if not test:
        return "test: " + NO_TEST
    return (
        f"test ({served}, {test['n']} images, scored once): accuracy {_estimate(test['accuracy'])}, "
        f"balanced accuracy {_estimate(test['balanced_accuracy'])}"
    )


def write_report(
    run_dir: Path,
    best: Checkpoint,
    manifest: Manifest,
    balance: str | None,
    metrics: Mapping[str, Any] | None,
) -> Path:
    """report.md: the test score of the served model (when exported), then how it was chosen."""
    c = best.config
    test = (metrics or {}).get("test")
    lines = [
        f"# Training report: {best.info.run_id}",
        "",
        f"- Data: `{manifest.root}` ({layout(manifest)}); labels: {', '.join(manifest.labels)}",
        f"- Model: {describe(c, torch.device('cpu')).rsplit('; device', 1)[0]}",
        f"- Weights: {best.info.weights_used}; git commit `{best.info.git_commit}`; created "
        f"{best.info.created}",
        "",
        "## Result",
        "",
    ]
    if metrics is None:
        lines += ["Not exported yet (`--no-export`): the test split has not been scored.", ""]
    elif test:
        lines += [f"The served model ({metrics['served']}), on the test split, scored once:", ""]
        lines += test_section(test, manifest.labels)
        lines += [
            f"Confusion matrix: ![confusion]({TEST_DIR}/confusion_matrix.png); misclassified "
            f"test images per class: `{TEST_DIR}/misclassified_<class>.png`; calibration "
            f"(temperature {metrics['temperature']:.3f}, {metrics['temperature_source']}; ECE "
            f"{test['ece_before_temperature']:.3f}"
            f" -> {test['ece']:.3f}): ![reliability]({TEST_DIR}/reliability.png)",
            "",
        ]
    else:
        lines += [NO_TEST, ""]
    lines += ["## How the model was chosen", "", chosen_text(best), ""]
    if metrics:
        lines += ["## None of these", "", *open_set_section(metrics)]
    if metrics and metrics.get("int8"):
        lines += [f"INT8: {metrics['int8']['reason']}.", ""]
    if balance:
        lines += [balance_line(manifest.counts()["train"], c.balance, balance), ""]
    lines += ["## Data", "", *counts_table(manifest.counts()), ""]
    lines += [f"- {note}" for note in manifest.notes]
    listed = run_dir / SKIPPED
    skipped = (
        max(0, len(listed.read_text(encoding="utf-8").splitlines()) - 1) if listed.is_file() else 0
    )
    lines += [
        f"- {skipped} file(s) skipped or removed as leaked copies (`{SKIPPED}`).",
        f"- {len(manifest.duplicates)} group(s) of near-duplicate files, each kept inside one "
        "split (`split.json`, `duplicates`)" + (":" if manifest.duplicates else "."),
    ]
    lines += [f"  - {', '.join(group)}" for group in manifest.duplicates[:20]]
    if len(manifest.duplicates) > 20:
        lines.append(f"  - ... and {len(manifest.duplicates) - 20} more")
    lines += [
        "",
        f"![class counts]({CLASS_COUNTS}) What the network sees in training: ![samples]({SAMPLES})",
        "",
        "## Training curves",
        "",
        f"![curves]({CURVES}) (`{HISTORY_CSV}`, `{HISTORY_JSON}`: per epoch, or per L2 strength)",
        "",
        "## Files",
        "",
        f"`best.pt` (the chosen epoch), `last.pt` (resume point), `split.json` (the splits), "
        f"`{CONFIG}` (what was trained), `{METRICS_JSON}` and `model_card.md` (after export).",
        "",
    ]
    return atomic_write_text(run_dir / REPORT, "\n".join(lines))
