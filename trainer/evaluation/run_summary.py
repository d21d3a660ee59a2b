"""What a run says about itself, in words: the lines ``trainer.fit`` and ``trainer.export``
print, and the sections ``report.md`` and the model card share."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.data.manifest import SPLITS, Manifest
from trainer.data.scan import Skipped
from trainer.learning.checkpoint import Checkpoint
from trainer.learning.config import SOLVED_HEAD, TrainConfig

NO_TEST = (
    "No test split (`--test-fraction 0` in the epochs regime): no unbiased estimate of how well "
    "this model does exists. The val figures chose the model and are optimistic."
)
ESTIMATED_BY = {
    "test": "the test split, scored once by the served model",
    "cross-validation": "5-fold cross-validation of the whole recipe (every photo predicted by a "
    "model that did not see it; the served model is fitted on every photo)",
}


def estimate_of(metrics: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return (metrics or {}).get("estimate")


def val_figure_note(config: TrainConfig) -> str:
    """What a figure of the exported model on the val images means for this run."""
    if config.regime_name == SOLVED_HEAD:
        return (
            "the final head was refitted on train + val, so this is not a validation score: it "
            "only compares INT8 with fp32"
        )
    return "val chose the epoch, so it is optimistic"


def chosen_text(best: Checkpoint) -> str:
    """How the kept model was chosen, in one sentence, with the figures that chose it."""
    c, figures = (
        best.config,
        ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in best.val_metrics.items()),
    )
    if c.regime_name == SOLVED_HEAD:
        return (
            f"A logistic-regression head with a fixed C = {best.weight_decay:g}, its temperature "
            f'{best.temperature or 1:.3f} and the "unknown" thresholds set out of fold by '
            "5-fold cross-validation over every train and val photo (each scored by a head that "
            f"did not see it), then fitted on all of them: out-of-fold {figures}. The temperature "
            "was fitted on these figures, so they are slightly optimistic."
        )
    return (
        f"Epoch {best.best_epoch} of {c.epochs} by val {c.select.replace('_', ' ')} (ties: lower "
        f"val loss): {figures}. These figures chose the model, so they are optimistic."
    )


def chosen_line(best: Checkpoint) -> str:
    """What the run chose and the figures it chose with, for the log."""
    chosen = (
        f"temperature {best.temperature or 1:.3f} and thresholds out of fold"
        if best.config.regime_name == SOLVED_HEAD
        else f"epoch {best.best_epoch} on val"
    )
    return f"{chosen}: " + ", ".join(f"{k} {v:.3f}" for k, v in best.val_metrics.items())


def data_lines(manifest: Manifest, skipped: Sequence[Skipped], run_dir: Path) -> list[str]:
    """What the scan and the split found: skipped files, near-duplicates, notes, negatives, the
    table of images per class and split."""
    lines = []
    if skipped:
        lines.append(
            f"skipped {len(skipped)} file(s) (undecodable or leaked copies): see "
            f"{run_dir / 'skipped.csv'}"
        )
    if manifest.duplicates:
        lines.append(
            f"{len(manifest.duplicates)} group(s) of near-duplicate files, each kept in one split "
            "(listed in split.json and report.md)"
        )
    lines += [f"note: {note}" for note in manifest.notes]
    if manifest.negatives:
        n = {s: sum(1 for it in manifest.negatives if it.split == s) for s in SPLITS}
        lines.append(
            f"negatives (none of the classes): {n['train']} train, {n['val']} val, {n['test']} "
            f"test, from {manifest.negatives_root}"
        )
    return [*lines, class_table(manifest.counts())]


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
        what = {
            "loss": "class-weighted loss",
            "prior": "logit adjustment (-log prior added to the logits)",
        }.get(resolved, "no balancing (within 1.5x)")
        return f"balance auto: {what} ({ratio})"
    return f"balance {resolved} ({ratio})"


def describe(config: TrainConfig, device: torch.device) -> str:
    blocks = (
        "whole backbone"
        if config.unfreeze_last < 0
        else f"last {config.unfreeze_last} backbone blocks"
    )
    trainable = (
        "backbone frozen, only the head trains"
        if config.frozen
        else f"{blocks} fine-tuned (lr x{config.backbone_lr_scale:g})"
    )
    if config.regime_name == SOLVED_HEAD:
        views = f" + {config.views} augmented views" if config.views else ""
        recipe = (
            f"logistic-regression head (C {config.head_c:g}) solved on the served view{views} of "
            "every train and val image, temperature and thresholds out of fold"
            + (", image and mirror averaged when served" if config.mirror else "")
        )
    else:
        recipe = (
            f"{config.head} head, {config.optimizer} lr {config.learning_rate:g}, "
            f"{config.scheduler}, weight decay {config.weight_decay:g}, {config.epochs} epochs, "
            f"best on val {config.select}"
        )
    weights = "random init" if config.weights == "none" else f"{config.weights} weights"
    return (
        f"{config.arch} ({weights}), {trainable}; input "
        f"{config.resize}->{config.crop}; {config.regime_name}: {recipe}; device {device}"
    )


def _estimate(e: Mapping[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    return f"{e['value']:.1%} [{e['low']:.1%}, {e['high']:.1%}]"


def estimate_section(test: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    """The run's estimate (test split or cross-validation) with its 95% intervals, and a
    per-class table."""
    served = test["served_answer"]
    photos = "test images" if test["method"] == "test" else "photos, cross-validated"
    lines = [
        f"Estimated on {ESTIMATED_BY[test['method']]}.",
        "",
        f"{test['n']} {photos}. Accuracy of the answer served **{_estimate(served['accuracy'])}**"
        f' ({_estimate(served["unknown"])} answered "unknown"); closed set: accuracy '
        f"**{_estimate(test['accuracy'])}**, balanced accuracy "
        f"**{_estimate(test['balanced_accuracy'])}**, macro-F1 {_estimate(test['macro_f1'])} "
        "(95% intervals: Wilson for proportions; see docs/training.md).",
        "",
        "| class | images | recall | precision | F1 | recall of the answer served |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = {row["label"]: row for row in test["per_class"]}
    for label in labels:
        row = rows[label]
        f1 = f"{row['f1']:.1%}" if row.get("f1") is not None else "-"
        lines.append(
            f"| {label} | {row['support']} | {_estimate(row.get('recall'))} | "
            f"{_estimate(row.get('precision'))} | {f1} | {_estimate(served['recall'][label])} |"
        )
    if test.get("absent"):
        lines.append("")
        lines.append(
            f"No image of {', '.join(test['absent'])}: no figure for it, and it is left out "
            "of balanced accuracy and macro-F1."
        )
    lines.append("")
    return lines


WITHOUT_NEGATIVES = {
    "nearest_photo": "Trained without negatives: the score is the similarity to the nearest "
    "training photo of the predicted class, which rejects kinds unlike every class but not the "
    "ones that look like them (an airliner, an empty sky). `--negatives DIR` (photos of none of "
    "the classes) adds a background head for those.",
    "max_probability": "Trained without negatives: the score is the top class probability, which "
    "tells other things apart poorly. `--negatives DIR` (photos of none of the classes) teaches "
    "the model what to reject.",
}


def open_set_section(metrics: Mapping[str, Any]) -> list[str]:
    """How the served model answers "none of these": the rule, then val and test figures."""
    rule, test = metrics["rejection"], estimate_of(metrics)
    val = rule["details"]["val"]
    lines = [
        f"Rule: `{rule['method']}`; an image whose `{rule['score']}` is below "
        f"{rule['threshold']:.4f} is answered `unknown`. The threshold was set on "
        f"{rule['details']['set_on']} so that {rule['accept_rate']:.0%} "
        "of the in-class images there pass.",
        "",
        "| split | in-class images accepted | negatives answered unknown | AUROC |",
        "| --- | ---: | ---: | ---: |",
    ]
    set_on = "train + val, out of fold" if "out-of-fold" in rule["details"]["set_on"] else "val"
    estimated = (test or {}).get("method", "test")
    for name, sep in ((set_on, val), (estimated, (test or {}).get("open_set"))):
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
        served = test["served_answer"]["accuracy"]["value"]
        lines += [
            "",
            f"Closed-set accuracy ({estimated}) {test['accuracy']['value']:.1%}; the answer served, with "
            f'"unknown", {served:.1%} (a rejected photo of a class counts as wrong).',
        ]
        kinds = test["open_set"].get("by_kind") or {}
        if kinds:
            lines += ["", f"| negatives, by kind ({estimated}) | images | answered unknown |"]
            lines += ["| --- | ---: | ---: |"]
            lines += [f"| {k} | {v['n']} | {v['rejected']:.1%} |" for k, v in sorted(kinds.items())]
    if not val["negatives"]:
        lines += ["", WITHOUT_NEGATIVES.get(rule["method"], WITHOUT_NEGATIVES["max_probability"])]
    return [*lines, ""]


def estimate_line(test: Mapping[str, Any] | None, served: str) -> str:
    if not test:
        return "estimate: " + NO_TEST
    answered = test["served_answer"]
    per_class = ", ".join(
        f"{row['label']} {_short(row.get('precision'))}/{_short(row.get('recall'))}"
        for row in test["per_class"]
    )
    how = ESTIMATED_BY[test["method"]].split(" (")[0]
    return (
        f"estimate ({how}; {served}, {test['n']} images): answer served "
        f'{_estimate(answered["accuracy"])} ({answered["unknown"]["value"]:.1%} "unknown"); '
        f"closed set accuracy {_estimate(test['accuracy'])}, balanced accuracy "
        f"{_estimate(test['balanced_accuracy'])}, macro-F1 {_estimate(test['macro_f1'])}; "
        f"precision/recall {per_class}"
    )


def _short(e: Mapping[str, Any] | None) -> str:
    return "-" if not e or e.get("value") is None else f"{e['value']:.0%}"
