"""A labelled set scored by one model, written for people: ``evaluation.md``, ``evaluation.json``,
the confusion matrix, the reliability diagram, a grid of misclassified images per class, and with
negatives the open-set figures (AUROC, rejection per kind) and their score histogram.

``trainer.evaluate`` writes one for a folder of new photos; the export writes one for the test
split. Every file is written atomically.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.model_contract import Rejection
from trainer.common.files import atomic_write_text
from trainer.evaluation.calibration import (
    ECE_BINS,
    ReliabilityBin,
    expected_calibration_error,
    reliability,
)
from trainer.evaluation.metrics import (
    MACRO_F1_INTERVAL,
    UNKNOWN_COLUMN,
    Estimate,
    ServedAnswer,
    Summary,
    served_answer,
    summarize,
)
from trainer.evaluation.misclassified import write_misclassified
from trainer.evaluation.plots import (
    confusion_png,
    reliability_png,
    score_histogram_png,
)
from trainer.evaluation.scoring import Evaluation, Scores
from trainer.exporting.rejection import separation
from trainer.learning.config import DEFAULT_MAX_MISCLASSIFIED

REPORT_MD = "evaluation.md"
REPORT_JSON = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"
HISTOGRAM_PNG = "score_histogram.png"
RELIABILITY_PNG = "reliability.png"
SMALL_CLASS = 10  # fewer images than this: the report warns that the interval is wide


@dataclass(frozen=True)
class Figures:
    """What a report measured: the closed-set summary (the closest class of every image), the
    served answer ("unknown" included) and, with negatives, the open-set figures."""

    summary: Summary
    served: ServedAnswer
    open_set: dict[str, Any] | None = None


def _fmt(estimate: Estimate | None) -> tuple[str, str]:
    if estimate is None:
        return "-", "-"
    return f"{estimate.value:.3f}", f"{estimate.low:.3f} - {estimate.high:.3f}"


def _markdown(
    evaluation: Evaluation, figures: Figures, title: str, ece: float, grids: Mapping[str, str]
) -> str:
    summary, open_set = figures.summary, figures.open_set
    lines = [
        *_header(evaluation, summary, title),
        *_metrics_table(figures, ece),
        *_per_class_table(figures),
        *_confusion(figures),
        "## Calibration",
        "",
        f"Expected calibration error {ece:.3f}: the mean gap between top-1 confidence and "
        f"accuracy over {ECE_BINS} equal-width confidence bins, weighted by images per bin "
        "(0 is perfectly calibrated).",
        "",
        f"![reliability diagram]({RELIABILITY_PNG})",
        "",
    ]
    if grids:
        lines += ["## Misclassified images", ""]
        lines += [f"- {label}: [{name}]({name})" for label, name in grids.items()]
        lines.append("")
    lines += _notes(evaluation, summary)
    if open_set:
        lines += ["", *_open_set_markdown(open_set)]
    return "\n".join(lines) + "\n"


def _header(evaluation: Evaluation, summary: Summary, title: str) -> list[str]:
    lines = [f"# {title}", ""]
    model = ", ".join(f"{k} {v}" for k, v in evaluation.model.items() if k != "path")
    if "path" in evaluation.model:
        lines.append(f"- model: `{evaluation.model['path']}`" + (f" ({model})" if model else ""))
    elif model:
        lines.append(f"- model: {model}")
    if evaluation.root is not None:
        lines.append(f"- data: `{evaluation.root}`")
    skipped = len(evaluation.skipped)
    return [
        *lines,
        f"- images scored: {summary.n}"
        + (f"; {skipped} skipped (not decodable, listed below)" if skipped else ""),
        "- scored through `shared.predictor.Predictor`: the API's decode, preprocessing and "
        "onnxruntime session",
        "",
    ]


def _metrics_table(figures: Figures, ece: float) -> list[str]:
    summary, served = figures.summary, figures.served
    lines = [
        "## Metrics (fractions; 95% intervals)",
        "",
        "The closed-set figures score each image's closest class; the answer served also says "
        '"unknown" when the model\'s rule rejects the image, which counts as wrong for a photo of '
        "a class.",
        "",
        "| metric | value | 95% interval |",
        "| --- | --- | --- |",
    ]
    for name, estimate in (
        ("accuracy of the answer served", served.accuracy),
        ('answered "unknown"', served.unknown),
        ("accuracy, closed set", summary.accuracy),
        ("balanced accuracy, closed set (mean per-class recall)", summary.balanced_accuracy),
        ("macro-F1, closed set", summary.macro_f1),
    ):
        value, interval = _fmt(estimate)
        lines.append(f"| {name} | {value} | {interval} |")
    return [*lines, f"| expected calibration error ({ECE_BINS} bins, top-1) | {ece:.3f} | - |", ""]


def _per_class_table(figures: Figures) -> list[str]:
    lines = [
        '## Per class (closed set; the last column with "unknown" answers as misses)',
        "",
        "| class | images | recall | 95% interval | precision | 95% interval | F1 | predicted | "
        "recall served |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row, served in zip(figures.summary.per_class, figures.served.recall, strict=True):
        recall, recall_ci = _fmt(row.recall) if not row.absent else ("absent", "-")
        precision, precision_ci = _fmt(row.precision)
        f1 = f"{row.f1:.3f}" if row.f1 is not None else "-"
        lines.append(
            f"| {row.label} | {row.support} | {recall} | {recall_ci} | {precision} | "
            f"{precision_ci} | {f1} | {row.predicted} | {_fmt(served)[0]} |"
        )
    return [*lines, ""]


def _confusion(figures: Figures) -> list[str]:
    labels = figures.summary.labels
    columns = [*labels, UNKNOWN_COLUMN]
    lines = [
        "## Confusion matrix of the answers served (rows: true class, columns: answer)",
        "",
        "| true \\ answered | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for label, counts in zip(labels, figures.served.confusion.tolist(), strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in counts) + " |")
    return [
        *lines,
        "",
        f"![confusion matrix]({CONFUSION_PNG}) (the closed-set matrix, each image's closest "
        f"class, is in {REPORT_JSON})",
        "",
    ]


def _notes(evaluation: Evaluation, summary: Summary) -> list[str]:
    lines = ["## Notes", ""]
    if summary.absent:
        lines.append(
            f"- **Absent classes** (no image here): {', '.join(summary.absent)}. Their recall is "
            "unknown, not zero; they are left out of balanced accuracy and macro-F1. Images "
            "wrongly predicted as them still count against accuracy."
        )
    small = [f"{r.label} ({r.support})" for r in summary.per_class if 0 < r.support < SMALL_CLASS]
    if small:
        lines.append(
            f"- Fewer than {SMALL_CLASS} images: {', '.join(small)}; read their recall through "
            "its interval, a single image moves it a lot."
        )
    lines.append(
        "- Intervals: Wilson score for accuracy, recall and precision; balanced accuracy's is the "
        f"mean of the per-class Wilson bounds (conservative); macro-F1's is the {MACRO_F1_INTERVAL}, "
        "which stays honest both for tiny classes and when a class's predictions are all alike."
    )
    if evaluation.skipped:
        lines += ["", "## Skipped files", ""]
        lines += [
            f"- `{evaluation.display_path(path)}`: {reason}"
            for path, reason in evaluation.skipped[:50]
        ]
        if len(evaluation.skipped) > 50:
            lines.append(f"- ... and {len(evaluation.skipped) - 50} more (evaluation.json)")
    return lines


def _open_set_markdown(open_set: Mapping[str, Any]) -> list[str]:
    sep = open_set["separation"]
    lines = [
        "## None of these (negatives)",
        "",
        f"Rule: `{open_set['method']}`, `{open_set['score']}` below {sep['threshold']:.4f} is "
        f"answered `unknown`. {sep['negatives']} negatives (photos of none of the classes).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| AUROC, in-class vs negatives | {sep['auroc']:.3f} |"
        if sep["auroc"] is not None
        else "| AUROC | - |",
        f"| negatives answered unknown | {sep['negatives_rejected']:.1%} |",
        f"| false-positive rate (negatives let through) at the threshold | "
        f"{1 - sep['negatives_rejected']:.1%} |",
        f"| in-class images accepted | {sep['in_class_accepted']:.1%} |",
        "",
        f"![score histogram]({HISTOGRAM_PNG})",
        "",
    ]
    kinds = open_set.get("by_kind") or {}
    if kinds:
        lines += ["| kind | negatives | answered unknown |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['n']} | {v['rejected']:.1%} |" for k, v in sorted(kinds.items())]
        lines.append("")
    return lines


def write_evaluation(
    out_dir: Path,
    evaluation: Evaluation,
    labels: Sequence[str],
    *,
    title: str,
    max_misclassified: int = DEFAULT_MAX_MISCLASSIFIED,
    negatives: Scores | None = None,
    negative_kinds: Sequence[str] = (),
    rejection: Rejection | None = None,
) -> Figures:
    """Write the report files into ``out_dir`` (each atomically); return the figures.

    With ``negatives`` (photos of none of the classes, scored by the same model) the report adds
    how well the model's rejection rule separates them from the labelled images: AUROC, the
    share answered unknown (per kind too), and a histogram of the scores.
    """
    labels = tuple(labels)
    if labels != evaluation.labels:
        raise ValueError(f"labels {labels} are not the evaluation's {evaluation.labels}")
    if evaluation.n == 0:
        raise ValueError("nothing was scored: no image decoded")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(evaluation.targets, evaluation.predictions, labels)
    known = evaluation.known if evaluation.known is not None else np.ones(evaluation.n, bool)
    served = served_answer(evaluation.targets, evaluation.predictions, known, len(labels))
    bins: list[ReliabilityBin] = reliability(evaluation.probabilities, evaluation.targets)
    ece = expected_calibration_error(evaluation.probabilities, evaluation.targets)
    columns = [*labels, UNKNOWN_COLUMN]
    confusion_png(out_dir / CONFUSION_PNG, served.confusion, labels, f"{title}: answers", columns)
    reliability_png(out_dir / RELIABILITY_PNG, bins, ece_before=ece, title=title)
    grids = (
        write_misclassified(out_dir, evaluation, summary, max_misclassified)
        if max_misclassified > 0
        else {}
    )
    open_set = (
        _open_set(out_dir, evaluation, negatives, negative_kinds, rejection, title)
        if negatives is not None
        else None
    )
    figures = Figures(summary, served, open_set)
    report = _json(evaluation, figures, title, ece, bins, grids)
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    markdown = _markdown(evaluation, figures, title, ece, grids)
    atomic_write_text(out_dir / REPORT_MD, markdown)
    return figures


def _json(
    evaluation: Evaluation,
    figures: Figures,
    title: str,
    ece: float,
    bins: Sequence[ReliabilityBin],
    grids: Mapping[str, str],
) -> dict[str, Any]:
    labels, confidences = evaluation.labels, evaluation.confidences
    known = evaluation.known if evaluation.known is not None else np.ones(evaluation.n, bool)
    return {
        "open_set": figures.open_set,
        "title": title,
        "model": dict(evaluation.model),
        "data": str(evaluation.root) if evaluation.root is not None else None,
        "seconds": round(evaluation.seconds, 3),
        "metrics": figures.summary.to_dict(),
        "served_answer": figures.served.to_dict(labels),
        "calibration": {
            "ece": ece,
            "bins": ECE_BINS,
            "reliability": [b.to_dict() for b in bins],
        },
        "files": {
            "confusion_matrix": CONFUSION_PNG,
            "reliability": RELIABILITY_PNG,
            "misclassified": grids,
        },
        "items": [
            {
                "path": evaluation.display_path(path),
                "label": labels[int(evaluation.targets[i])],
                "predicted": labels[int(evaluation.predictions[i])],
                "answered": labels[int(evaluation.predictions[i])] if known[i] else UNKNOWN_COLUMN,
                "confidence": float(confidences[i]),
            }
            for i, path in enumerate(evaluation.paths)
        ],
        "skipped": [
            {"path": evaluation.display_path(path), "reason": reason}
            for path, reason in evaluation.skipped
        ],
    }


def _open_set(
    out_dir: Path,
    evaluation: Evaluation,
    negatives: Scores,
    kinds: Sequence[str],
    rejection: Rejection | None,
    title: str,
) -> dict[str, Any]:
    """AUROC and rejection rates of labelled images vs negatives, and the score histogram."""
    if rejection is None:  # an older export: the best score it has is its top probability
        ours, theirs = evaluation.confidences, negatives.probabilities.max(axis=1)
        method, score, threshold = "max_probability (no rule in the model)", "max_probability", None
    else:
        ours, theirs = evaluation.known_scores, negatives.known_scores
        method, score, threshold = rejection.method, rejection.score, rejection.threshold
    cut = threshold if threshold is not None else float("-inf")
    sep = separation(np.asarray(ours), np.asarray(theirs), cut).to_dict()
    sep["threshold"] = threshold if threshold is not None else float("nan")
    by_kind: dict[str, dict[str, float]] = {}
    if kinds:
        for kind in sorted(set(kinds)):
            mask = np.array([k == kind for k in kinds])
            by_kind[kind] = {"n": int(mask.sum()), "rejected": float(np.mean(theirs[mask] < cut))}
    score_histogram_png(
        out_dir / HISTOGRAM_PNG,
        {"in-class images": ours, "negatives": theirs},
        threshold=threshold,
        title=f"{title}: {score}",
        xlabel=score,
    )
    return {"method": method, "score": score, "separation": sep, "by_kind": by_kind}
