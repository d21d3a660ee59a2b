"""The run's estimate of how well the served model does: the one score of the test split (the
served file, through the API's own code path, after every choice was made; its report lands in
``RUN/test/``), or without a test split the recipe cross-validated. Its figures head
``metrics.json``, the model card and ``report.md``."""

from pathlib import Path
from typing import Any

import numpy as np

from shared.predictor import Predictor
from trainer.data.manifest import Manifest
from trainer.evaluation.calibration import expected_calibration_error
from trainer.evaluation.evaluation_report import CONFUSION_PNG, write_evaluation
from trainer.evaluation.metrics import UNKNOWN_COLUMN, served_answer, summarize
from trainer.evaluation.plots import confusion_png
from trainer.evaluation.scoring import evaluate_items, score_files
from trainer.exporting.rejection import separation
from trainer.learning.calibrate import uncalibrated
from trainer.learning.config import DEFAULT_MAX_MISCLASSIFIED


def score_test_split(
    served: Path,
    manifest: Manifest,
    temperature: float,
    out_dir: Path,
    max_misclassified: int | None = None,
) -> dict[str, Any] | None:
    """The served model's test figures (``None`` for a run without a test split)."""
    items = manifest.split("test")
    if not items:
        return None
    predictor = Predictor.from_path(served)
    evaluation = evaluate_items(predictor, items)
    rejection = predictor.contract.rejection
    assert rejection is not None  # the export always writes one
    paths = manifest.negative_split("test")
    negatives = score_files(predictor, paths, desc="test negatives") if paths else None
    kinds = [it.label for it in manifest.negatives if it.split == "test"]
    figures = write_evaluation(
        out_dir,
        evaluation,
        manifest.labels,
        title=f"test split, served model ({served.name})",
        max_misclassified=DEFAULT_MAX_MISCLASSIFIED
        if max_misclassified is None
        else max_misclassified,
        negatives=negatives,
        negative_kinds=[kinds[i] for i in negatives.kept] if negatives else (),
        rejection=rejection,
    )
    if figures.open_set is not None:
        open_set = {**figures.open_set["separation"], "by_kind": figures.open_set["by_kind"]}
    else:  # no negatives: how many photos of the classes the rule lets through
        sep = separation(evaluation.known_scores, np.zeros(0), rejection.threshold)
        open_set = {**sep.to_dict(), "by_kind": {}}
    targets = np.asarray(evaluation.targets)
    before = uncalibrated(evaluation.probabilities, temperature)
    return {
        **figures.summary.to_dict(),
        "served_answer": figures.served.to_dict(manifest.labels),
        "ece_before_temperature": expected_calibration_error(before, targets),
        "ece": expected_calibration_error(evaluation.probabilities, targets),
        "open_set": open_set,
    }


def cross_validated(
    estimate: dict[str, Any], labels: tuple[str, ...], out_dir: Path
) -> dict[str, Any]:
    """The run's estimate without a test split: the solved head's recipe cross-validated whole
    (``trainer.learning.recipe.cross_validate``), in the test figures' form, its confusion matrix
    of answers ("unknown" a column) drawn into ``out_dir``. It estimates the fp32 model on cached
    features; the export's gates tie the served file to it."""
    k = len(labels)
    truth = np.asarray(estimate["labels"], np.int64)
    predicted = np.asarray(estimate["predicted"], np.int64)
    known = np.asarray(estimate["known"], float)
    inside = truth < k
    summary = summarize(truth[inside], predicted[inside], labels)
    served = served_answer(truth[inside], predicted[inside], known[inside] >= 0, k)
    title = f"cross-validation, {estimate['folds']} folds: answers"
    columns = [*labels, UNKNOWN_COLUMN]
    confusion_png(out_dir / CONFUSION_PNG, served.confusion, labels, title, columns)
    kinds = np.asarray(estimate["negative_kinds"], dtype=object)
    negatives = known[~inside]
    open_set = separation(known[inside], negatives, 0.0).to_dict()
    open_set["by_kind"] = {
        kind: {
            "n": int((kinds == kind).sum()),
            "rejected": float(np.mean(negatives[kinds == kind] < 0)),
        }
        for kind in sorted(set(kinds))
    }
    return {**summary.to_dict(), "served_answer": served.to_dict(labels), "open_set": open_set}
