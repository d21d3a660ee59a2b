"""The one score of the test split: the served file, through the API's own code path, after every
choice was made. Its report lands in ``RUN/test/``; its figures head ``metrics.json``, the model
card and ``report.md``."""

from pathlib import Path
from typing import Any

import numpy as np

from shared.predictor import Predictor
from trainer.data.manifest import Manifest
from trainer.evaluation.evaluation_report import write_evaluation
from trainer.evaluation.metrics import expected_calibration_error
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
    summary = write_evaluation(
        out_dir,
        evaluation,
        manifest.labels,
        title=f"test split, served model ({served.name})",
        max_misclassified=DEFAULT_MAX_MISCLASSIFIED
        if max_misclassified is None
        else max_misclassified,
    )
    targets = np.asarray(evaluation.targets)
    negatives = score_files(predictor, manifest.negative_split("test"), desc="test negatives")
    rejection = predictor.contract.rejection
    assert rejection is not None  # the export always writes one
    correct = (evaluation.predictions == targets) & np.asarray(evaluation.known)
    before = uncalibrated(evaluation.probabilities, temperature)
    return {
        **summary.to_dict(),
        "ece_before_temperature": expected_calibration_error(before, targets),
        "ece": expected_calibration_error(evaluation.probabilities, targets),
        # Rejected photos of the classes count as errors here: what a client sees.
        "accuracy_with_rejection": float(correct.mean()) if len(correct) else 0.0,
        "open_set": separation(
            evaluation.known_scores, negatives.known_scores, rejection.threshold
        ).to_dict(),
    }
