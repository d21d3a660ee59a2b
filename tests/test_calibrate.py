"""Temperature scaling: fitted on val, it makes an over-confident model's probabilities honest."""

import numpy as np
import pytest

from trainer.evaluation.calibration import expected_calibration_error
from trainer.learning.calibrate import fit_temperature, softmax, uncalibrated


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a 4-class model that is right ~70% of the time but says ~99%."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 4, n))
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), predicted] += 8.0
    return logits, labels


def test_temperature_lowers_the_calibration_error_of_an_overconfident_model() -> None:
    val_logits, val_labels = _overconfident(seed=1)
    test_logits, test_labels = _overconfident(seed=2)
    t = fit_temperature(val_logits, val_labels)
    assert t > 2  # it has to soften a model this sure of itself
    before = expected_calibration_error(softmax(test_logits), test_labels)
    after = expected_calibration_error(softmax(test_logits, t), test_labels)
    assert before > 0.2 and after < 0.05 and after < before / 4
    # No decision changes: the ranking of the classes is the same.
    assert (softmax(test_logits, t).argmax(1) == test_logits.argmax(1)).all()


def test_a_calibrated_model_keeps_a_temperature_near_one() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits)])  # drawn from its own odds
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)


def test_uncalibrated_recovers_the_raw_softmax_from_served_probabilities() -> None:
    logits, _ = _overconfident(200)
    served = softmax(logits, 3.7).astype(np.float32)  # what the exported graph answers
    np.testing.assert_allclose(uncalibrated(served, 3.7), softmax(logits), atol=1e-4)


def test_no_val_images_means_no_temperature() -> None:
    assert fit_temperature(np.zeros((0, 4)), np.zeros(0, np.int64)) == 1.0
