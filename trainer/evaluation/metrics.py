"""Classification metrics with their uncertainty, as fractions (0..1), never percent.

A test split of a collected photo set is small and imbalanced, so every headline figure comes
with a 95% interval that shows how little a handful of images can tell:

* accuracy, per-class recall and per-class precision: Wilson score intervals (they stay inside
  [0, 1] and are honest at 0/n and n/n, where the normal approximation collapses to a point);
* balanced accuracy (mean per-class recall over the classes present): the mean of the per-class
  Wilson bounds. That is not an exact interval for a mean; it is what every class's interval
  implies if all classes were off in the same direction at once, so it is conservative (wider than
  an interval that assumes independent errors) and still computable when a class has 2 images;
* macro-F1: percentile intervals of two seeded stratified bootstraps, joined (see
  :func:`macro_f1_interval`); F1 has no closed-form interval, and a fixed seed makes reports
  reproducible.

Classes with no image in ``y_true`` are *absent*: support 0, recall ``None``, left out of balanced
accuracy and macro-F1 (a recall of 0/0 is not a zero), and listed in :attr:`Summary.absent` so
the report can name them. Their false positives still count against accuracy and precision.

Also here: the answer served, "unknown" included. Counting is scikit-learn's; the intervals are
ours, since no maintained library gives Wilson or stratified-bootstrap intervals for these.
Calibration (reliability bins, expected calibration error) is ``trainer.evaluation.calibration``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MACRO_F1_INTERVAL = (
    f"union of two stratified bootstraps' 2.5-97.5 percentile intervals (plain, and Bayesian "
    f"with a Dirichlet prior of 1/K per cell), {BOOTSTRAP_RESAMPLES} resamples each, seed "
    f"{BOOTSTRAP_SEED}"
)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts over classes ``0 .. n_classes - 1``."""
    if len(y_true) == 0:
        return np.zeros((n_classes, n_classes), dtype=np.int64)
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(n_classes)).astype(np.int64)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(0.0, 1.0)`` when ``n`` is 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0/n and n/n the exact bound is 0 or 1; rounding must not push it a hair past.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval; ``n`` is the number of observations behind it."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    @classmethod
    def proportion(cls, successes: int, n: int) -> "Estimate":
        """``successes / n`` with its Wilson interval (value 0.0 when ``n`` is 0)."""
        low, high = wilson_interval(successes, n)
        return cls(successes / n if n else 0.0, low, high, n)


@dataclass(frozen=True)
class ClassMetrics:
    """One class. ``recall``/``f1`` are ``None`` for an absent class (no image of it), and
    ``precision`` is ``None`` when the model never predicted the class."""

    label: str
    support: int  # images of this class
    predicted: int  # images predicted as this class
    correct: int
    recall: Estimate | None
    precision: Estimate | None
    f1: float | None

    @property
    def absent(self) -> bool:
        return self.support == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "support": self.support,
            "predicted": self.predicted,
            "correct": self.correct,
            "recall": self.recall.to_dict() if self.recall else None,
            "precision": self.precision.to_dict() if self.precision else None,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class Summary:
    """Everything :func:`summarize` measures. ``balanced_accuracy`` and ``macro_f1`` are ``None``
    only when no image was scored at all."""

    labels: tuple[str, ...]
    n: int
    accuracy: Estimate
    balanced_accuracy: Estimate | None
    macro_f1: Estimate | None
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray  # cm[true, predicted]
    absent: tuple[str, ...]  # labels with no image in y_true

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "n": self.n,
            "accuracy": self.accuracy.to_dict(),
            "balanced_accuracy": self.balanced_accuracy.to_dict()
            if self.balanced_accuracy
            else None,
            "macro_f1": self.macro_f1.to_dict() if self.macro_f1 else None,
            "per_class": [row.to_dict() for row in self.per_class],
            "confusion_matrix": self.confusion.tolist(),
            "absent": list(self.absent),
            "intervals": {
                "level": 0.95,
                "accuracy": "Wilson",
                "recall_precision": "Wilson per class",
                "balanced_accuracy": "mean of the per-class Wilson bounds (conservative)",
                "macro_f1": MACRO_F1_INTERVAL,
            },
        }


def _f1_from_counts(tp: Any, predicted: Any, support: Any) -> Any:
    """F1 = 2tp / (predicted + support), elementwise; the denominator is positive for every
    class present, which is the only place it is used."""
    return 2.0 * tp / np.maximum(predicted + support, 1e-12)


def macro_f1_interval(
    cm: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """A 95% interval for macro-F1 (over the classes present) from the confusion matrix
    ``cm[true, predicted]``: the union of the 2.5-97.5 percentile intervals of two stratified
    bootstraps (each class's image count fixed, its predictions redrawn), seeded.

    * Plain: each class's predictions redrawn from its observed row (multinomial). It is the
      textbook interval, but it collapses to a point when every image of a class got the same
      prediction: a perfect classifier on a dozen images would claim certainty.
    * Bayesian: each class's prediction rates drawn from Dirichlet(row + 1/K per cell), which keeps
      some doubt at those edges, but whose prior pulls a class of three images towards chance,
      so alone it can put the whole interval below the estimate.

    Their union is never narrower than either, and it always contains the estimate.
    """
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    support = cm.sum(axis=1)
    present = np.flatnonzero(support > 0)
    rng = np.random.default_rng(seed)
    plain = np.zeros((resamples, k, k))
    bayes = np.zeros((resamples, k, k))
    for c in present:
        plain[:, c, :] = rng.multinomial(int(support[c]), cm[c] / support[c], size=resamples)
        bayes[:, c, :] = rng.dirichlet(cm[c] + 1.0 / k, size=resamples) * support[c]
    bounds = []
    for counts in (plain, bayes):
        tp = counts[:, np.arange(k), np.arange(k)]
        f1 = _f1_from_counts(tp, counts.sum(axis=1), support[None, :])[:, present]
        bounds.append(np.percentile(f1.mean(axis=1), [2.5, 97.5]))
    tp = np.diag(cm)
    value = float(_f1_from_counts(tp, cm.sum(axis=0), support)[present].mean())
    low = min(bounds[0][0], bounds[1][0], value)
    high = max(bounds[0][1], bounds[1][1], value)
    return float(low), float(high)


def summarize(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str],
) -> Summary:
    """Accuracy, balanced accuracy, macro-F1 and per-class metrics with 95% intervals."""
    labels = tuple(labels)
    k = len(labels)
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} targets but {pred.size} predictions")
    for name, values in (("targets", true), ("predictions", pred)):
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"{name} must be class indices in [0, {k})")
    cm = confusion_matrix(true, pred, k)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    n = int(true.size)

    rows = []
    for i, label in enumerate(labels):
        present = support[i] > 0
        rows.append(
            ClassMetrics(
                label=label,
                support=int(support[i]),
                predicted=int(predicted[i]),
                correct=int(tp[i]),
                recall=Estimate.proportion(int(tp[i]), int(support[i])) if present else None,
                precision=Estimate.proportion(int(tp[i]), int(predicted[i]))
                if predicted[i]
                else None,
                f1=float(_f1_from_counts(tp[i], predicted[i], support[i])) if present else None,
            )
        )
    present_rows = [row for row in rows if not row.absent]
    balanced = macro = None
    if present_rows:
        recalls = [row.recall for row in present_rows if row.recall]
        balanced = Estimate(
            float(np.mean([r.value for r in recalls])),
            float(np.mean([r.low for r in recalls])),
            float(np.mean([r.high for r in recalls])),
            n,
        )
        low, high = macro_f1_interval(cm)
        value = float(np.mean([row.f1 for row in present_rows if row.f1 is not None]))
        macro = Estimate(value, low, high, n)
    return Summary(
        labels=labels,
        n=n,
        accuracy=Estimate.proportion(int(tp.sum()), n),
        balanced_accuracy=balanced,
        macro_f1=macro,
        per_class=tuple(rows),
        confusion=cm,
        absent=tuple(row.label for row in rows if row.absent),
    )


UNKNOWN_COLUMN = "unknown"


@dataclass(frozen=True)
class ServedAnswer:
    """What a client was answered, the "unknown" rule applied: a photo of a class answered
    "unknown" counts as an error, as it does for the client."""

    accuracy: Estimate  # the right class given
    unknown: Estimate  # share of the photos answered "unknown"
    recall: tuple[Estimate | None, ...]  # per class, None for an absent class
    confusion: np.ndarray  # (classes, classes + 1): rows the true class, last column "unknown"

    def to_dict(self, labels: Sequence[str]) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy.to_dict(),
            "unknown": self.unknown.to_dict(),
            "recall": {
                label: r.to_dict() if r else None
                for label, r in zip(labels, self.recall, strict=True)
            },
            "confusion_matrix": self.confusion.tolist(),
            "columns": [*labels, UNKNOWN_COLUMN],
        }


def served_answer(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    known: Sequence[bool] | np.ndarray,
    n_classes: int,
) -> ServedAnswer:
    """Figures of the served answer: ``y_pred`` where ``known``, else "unknown"."""
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    answer = np.where(np.asarray(known, dtype=bool), np.asarray(y_pred, dtype=np.int64), n_classes)
    cm = confusion_matrix(true, answer, n_classes + 1)[:n_classes]
    support, n = cm.sum(axis=1), int(true.size)
    recall = tuple(
        Estimate.proportion(int(cm[c, c]), int(support[c])) if support[c] else None
        for c in range(n_classes)
    )
    return ServedAnswer(
        accuracy=Estimate.proportion(int(np.trace(cm[:, :n_classes])), n),
        unknown=Estimate.proportion(int(cm[:, n_classes].sum()), n),
        recall=recall,
        confusion=cm,
    )
