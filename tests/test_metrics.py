"""trainer.evaluation.metrics: intervals against known values, absent classes, calibration, AUROC."""

import json

import numpy as np
import pytest

from trainer.evaluation.calibration import expected_calibration_error, reliability
from trainer.evaluation.metrics import (
    Estimate,
    confusion_matrix,
    macro_f1_interval,
    summarize,
    wilson_interval,
)

LABELS = ("a", "b", "c")


# Reference values: Wilson score interval, z = 1.96 (e.g. Newcombe 1998; R binom::binom.wilson).
@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (0, 2, 0.0, 0.6576),
        (2, 2, 0.3424, 1.0),
        (50, 100, 0.4038, 0.5962),
        (1, 10, 0.0179, 0.4042),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_known_values(successes: int, n: int, low: float, high: float) -> None:
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    # More data, narrower interval, always around the observed proportion.
    widths = []
    for n in (4, 40, 400):
        low, high = wilson_interval(n // 4, n)
        assert low < 0.25 < high
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)


def test_absent_class_is_named_and_excluded() -> None:
    # "c" has no image but is predicted once (a false positive).
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 2]
    s = summarize(y_true, y_pred, LABELS)
    assert s.absent == ("c",)
    c = s.per_class[2]
    assert (c.support, c.predicted, c.recall, c.f1) == (0, 1, None, None)
    assert c.precision is not None and c.precision.value == 0.0
    assert s.accuracy.value == pytest.approx(4 / 6)
    # Mean recall over the two present classes only: (3/4 + 1/2) / 2.
    assert s.balanced_accuracy is not None
    assert s.balanced_accuracy.value == pytest.approx(0.625)
    bounds = [wilson_interval(3, 4), wilson_interval(1, 2)]
    assert s.balanced_accuracy.low == pytest.approx(np.mean([b[0] for b in bounds]))
    assert s.balanced_accuracy.high == pytest.approx(np.mean([b[1] for b in bounds]))
    # F1 a = 2*3/(4+3) = 6/7, F1 b = 2*1/(2+2) = 1/2; macro over present classes.
    assert s.macro_f1 is not None
    assert s.macro_f1.value == pytest.approx((6 / 7 + 0.5) / 2)
    assert s.macro_f1.low <= s.macro_f1.value <= s.macro_f1.high
    assert s.confusion.tolist() == [[3, 1, 0], [0, 1, 1], [0, 0, 0]]


def test_never_predicted_class_has_no_precision_and_zero_f1() -> None:
    s = summarize([0, 1, 1], [0, 0, 0], ("a", "b"))
    b = s.per_class[1]
    assert b.precision is None and b.f1 == 0.0
    assert b.recall == Estimate(0.0, 0.0, wilson_interval(0, 2)[1], 2)
    assert s.balanced_accuracy is not None and s.balanced_accuracy.value == pytest.approx(0.5)


def _plain_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> tuple[float, float]:
    """Reference: resample each class's images with replacement, 1000 times."""
    rng = np.random.default_rng(1)
    members = [np.flatnonzero(y_true == c) for c in range(k)]
    values = []
    for _ in range(1000):
        idx = np.concatenate([rng.choice(m, m.size) for m in members])
        cm = confusion_matrix(y_true[idx], y_pred[idx], k)
        f1 = 2 * np.diag(cm) / (cm.sum(axis=0) + cm.sum(axis=1))
        values.append(f1.mean())
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_macro_f1_interval_agrees_with_a_plain_bootstrap_on_a_large_sample() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 1500)
    y_pred = np.where(rng.random(1500) < 0.75, y_true, rng.integers(0, 3, 1500))
    cm = confusion_matrix(y_true, y_pred, 3)
    first = macro_f1_interval(cm)
    assert first == macro_f1_interval(cm)  # seeded
    assert first != macro_f1_interval(cm, seed=1)
    s = summarize(y_true, y_pred, LABELS)
    assert s.macro_f1 is not None and (s.macro_f1.low, s.macro_f1.high) == first
    assert first[0] < s.macro_f1.value < first[1]
    assert first == pytest.approx(_plain_bootstrap(y_true, y_pred, 3), abs=0.01)


def test_macro_f1_interval_keeps_room_above_an_estimate_with_a_tiny_class() -> None:
    # A rare class of three images, two found: a prior alone would drag every resample of that
    # class towards chance and put the interval's top at the estimate itself.
    y_true = np.array([0] * 40 + [1] * 20 + [2] * 40 + [3] * 3)
    y_pred = y_true.copy()
    y_pred[:4], y_pred[60:66], y_pred[100] = 1, 3, 2
    s = summarize(y_true, y_pred, (*LABELS, "d"))
    assert s.macro_f1 is not None
    assert s.macro_f1.low < s.macro_f1.value < s.macro_f1.high


def test_macro_f1_interval_is_honest_when_every_prediction_is_alike() -> None:
    # A plain bootstrap of a perfect (or constant) classifier returns the same F1 every time.
    y = np.repeat([0, 1, 2], 12)
    perfect = summarize(y, y, LABELS).macro_f1
    assert perfect is not None and perfect.value == perfect.high == 1.0
    assert 0.6 < perfect.low < 0.95
    constant = summarize(y, np.ones_like(y), LABELS).macro_f1
    assert constant is not None and constant.value == pytest.approx(1 / 6)
    assert constant.high - constant.low > 0.05
    more = summarize(np.repeat([0, 1, 2], 120), np.repeat([0, 1, 2], 120), LABELS).macro_f1
    assert more is not None and more.low > perfect.low  # more images, less doubt


def test_summary_is_json_ready() -> None:
    s = summarize([0, 1, 2, 2], [0, 1, 2, 1], LABELS)
    data = json.loads(json.dumps(s.to_dict()))
    assert data["accuracy"]["value"] == 0.75 and data["absent"] == []
    assert data["per_class"][2]["recall"]["n"] == 2
    empty = summarize([], [], LABELS)
    assert empty.n == 0 and empty.balanced_accuracy is None
    with pytest.raises(ValueError, match="class indices"):
        summarize([0, 3], [0, 0], LABELS)


def _toy(confidence: float, accuracy: float, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities with one top-1 confidence, right on ``accuracy`` of the rows."""
    probs = np.tile([confidence, 1 - confidence], (n, 1))
    y = np.where(np.arange(n) < round(accuracy * n), 0, 1)
    return probs, y


def test_ece_calibrated_vs_overconfident() -> None:
    assert expected_calibration_error(*_toy(0.8, 0.8)) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(*_toy(0.99, 0.6)) == pytest.approx(0.39)
    # Mixed: half the images at 0.6 (60% right), half at 0.95 (70% right): ECE = 0.5 * 0.25.
    p1, y1 = _toy(0.6, 0.6, 500)
    p2, y2 = _toy(0.95, 0.7, 500)
    probs, y = np.concatenate([p1, p2]), np.concatenate([y1, y2])
    assert expected_calibration_error(probs, y) == pytest.approx(0.125)
    bins = reliability(probs, y)
    assert len(bins) == 15 and sum(b.count for b in bins) == 1000
    filled = [b for b in bins if b.count]
    assert [(b.count, b.confidence, b.accuracy) for b in filled] == [
        (500, pytest.approx(0.6), pytest.approx(0.6)),
        (500, pytest.approx(0.95), pytest.approx(0.7)),
    ]
    assert all(b.low < b.confidence <= b.high for b in filled)  # type: ignore[operator]


def test_reliability_edges() -> None:
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    bins = reliability(probs, [0, 1], bins=10)
    assert bins[-1].count == 1 and bins[4].count == 1  # 1.0 in the last bin, 0.5 in (0.4, 0.5]
    assert bins[4].accuracy == 0.0  # argmax of a tie is the first label, which is wrong here
    with pytest.raises(ValueError):
        reliability(np.zeros((0, 2)), [])


def test_confusion_matrix_counts_every_class() -> None:
    assert confusion_matrix([0, 1, 1], [1, 1, 0], 3).tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 0]]
