"""The files a run writes for people: ``report.md``, the curves and the pictures of its data.

``report.md`` leads with the served model's score on the test split (written by the export, the
only time test is scored) and then says how the model was chosen. Every file is written
atomically (``trainer.common.files``, or ``trainer.evaluation.plots``, which does too).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.common.files import atomic_write_text
from trainer.data.images import ImageDataset, denormalize, train_transform
from trainer.data.manifest import FILENAME as SPLIT_FILE
from trainer.data.manifest import Manifest
from trainer.evaluation.evaluation_report import CONFUSION_PNG
from trainer.evaluation.plots import (
    class_counts_png,
    curves_png,
    image_grid_png,
    score_histogram_png,
)
from trainer.evaluation.run_summary import (
    NO_TEST,
    balance_line,
    chosen_text,
    counts_table,
    describe,
    estimate_of,
    estimate_section,
    layout,
    open_set_section,
)
from trainer.exporting.publish import METRICS_JSON
from trainer.learning.checkpoint import BEST, LAST, Checkpoint
from trainer.learning.config import SOLVED_HEAD, TrainConfig
from trainer.learning.engine import make_loader
from trainer.learning.run import HISTORY_CSV, HISTORY_JSON, balance_mode

CURVES = "curves.png"
RULE_PNG = "unknown_rule.png"
CLASS_COUNTS = "class_counts.png"
SAMPLES = "samples.png"
SKIPPED = "skipped.csv"
CONFIG = "config.json"
TIMING = "timing.json"
REPORT = "report.md"
CARD_FILE = "model_card.md"
TEST_DIR = "test"
SAMPLE_GRID = 18


def draw_curves(
    run_dir: Path, history: Sequence[dict[str, Any]], config: TrainConfig, best: Checkpoint | None
) -> None:
    """What the run learnt, as a picture: per epoch, loss and accuracy (curves.png); for the
    solved head, the out-of-fold known scores its "unknown" rule was set on (unknown_rule.png)."""
    if config.regime_name != SOLVED_HEAD:
        if history:
            curves_png(run_dir / CURVES, history, config.select)
        return
    if best is None or best.rejection is None:
        return
    scores = {"photos of the classes": best.rejection["known_scores"]}
    if best.rejection["negative_known_scores"]:
        scores["negatives"] = best.rejection["negative_known_scores"]
    score_histogram_png(
        run_dir / RULE_PNG,
        scores,
        threshold=0.0,
        title='out-of-fold known score: below 0 is answered "unknown"',
        xlabel="known_score",
    )


def data_pictures(
    run_dir: Path, manifest: Manifest, train_items: Sequence[tuple[Path, int]], config: TrainConfig
) -> None:
    """class_counts.png, and samples.png: augmented training images as the network sees them."""
    class_counts_png(run_dir / CLASS_COUNTS, manifest.counts())
    spec = config.spec
    train_set = ImageDataset(train_items, train_transform(spec, config.augment), spec.resize)
    loader = make_loader(train_set, SAMPLE_GRID, seed=config.seed, workers=0, shuffle=True)
    x, y = next(iter(loader))
    image_grid_png(
        run_dir / SAMPLES,
        list(denormalize(x, config.spec)),
        [(*manifest.labels, "none of these")[int(i)] for i in y],
        f"augmented training samples ({config.augment.describe()})",
    )


def write_report(
    run_dir: Path,
    best: Checkpoint,
    manifest: Manifest,
    metrics: Mapping[str, Any] | None,
) -> Path:
    """report.md: the estimate of the served model (when exported), then how it was chosen."""
    c = best.config
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
        *_result(metrics, manifest),
        "## How the model was chosen",
        "",
        chosen_text(best),
        "",
    ]
    if metrics:
        lines += ["## None of these", "", *open_set_section(metrics)]
    if metrics and metrics.get("int8"):
        lines += [f"INT8: {metrics['int8']['reason']}.", ""]
    train_counts = manifest.counts()["train"]
    lines += [balance_line(train_counts, c.balance, balance_mode(c, train_counts)), ""]
    lines += [*_data(run_dir, manifest), *_learnt_and_files(c)]
    return atomic_write_text(run_dir / REPORT, "\n".join(lines))


def _result(metrics: Mapping[str, Any] | None, manifest: Manifest) -> list[str]:
    test, estimate = (metrics or {}).get("test"), estimate_of(metrics)
    if metrics is None:
        return ["Not exported yet (`--no-export`): nothing has been estimated.", ""]
    lines = [f"The served model ({metrics['served']}):", ""]
    lines += estimate_section(estimate, manifest.labels) if estimate else [NO_TEST, ""]
    if estimate and estimate.get("method") == "cross-validation":
        lines += [
            f"Confusion matrix of the cross-validated answers: ![confusion]({CONFUSION_PNG})",
            "",
        ]
    if test:
        lines += [
            f"Confusion matrix: ![confusion]({TEST_DIR}/{CONFUSION_PNG}); misclassified "
            f"test images per class: `{TEST_DIR}/misclassified_<class>.png`; calibration "
            f"(temperature {metrics['temperature']:.3f}, {metrics['temperature_source']}; ECE "
            f"{test['ece_before_temperature']:.3f} -> {test['ece']:.3f}): "
            f"![reliability]({TEST_DIR}/reliability.png)",
            "",
        ]
    return lines


def _data(run_dir: Path, manifest: Manifest) -> list[str]:
    lines = ["## Data", "", *counts_table(manifest.counts()), ""]
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
    return lines


def _learnt_and_files(c: TrainConfig) -> list[str]:
    return [
        "",
        f"![class counts]({CLASS_COUNTS}) What the network sees in training: ![samples]({SAMPLES})",
        "",
        "## What the run learnt",
        "",
        f"![curves]({CURVES}) (per epoch: `{HISTORY_CSV}`, `{HISTORY_JSON}`)"
        if c.regime_name != SOLVED_HEAD
        else f"![unknown rule]({RULE_PNG}) (out-of-fold figures: `{HISTORY_CSV}`, "
        f"`{HISTORY_JSON}`)",
        "",
        "## Files",
        "",
        f"`{BEST}` (the chosen model), `{LAST}` (resume point), `{SPLIT_FILE}` (the splits), "
        f"`{CONFIG}` (what was trained), `{METRICS_JSON}` and `{CARD_FILE}` (after export).",
        "",
    ]
