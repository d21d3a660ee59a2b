"""The solved head's mathematics: a linear classifier on standardised features, fitted to
convergence by scikit-learn, and everything it chooses chosen out of fold.

* **The fit.** With the backbone frozen, the head is a convex problem: multinomial logistic
  regression (L-BFGS) with a fixed L2 strength (``--head-c``, scikit-learn's ``C``). Each image
  weighs 1 however many views it has (each view weighs ``1 / views``), so views add augmentation,
  not weight. A strength chosen out of fold by macro-F1 or balanced accuracy was measured and lost
  to a fixed one on realdev (docs/training.md).
* **Out of fold.** Folds are :class:`sklearn.model_selection.StratifiedGroupKFold`: stratified
  by class, near-duplicate groups kept whole, shuffled by the run's seed. Every image is scored
  by a head that did not see it.
* **The temperature** is fitted on those out-of-fold logits, so the served probabilities mean
  what they say.
* **One correction for imbalance** (``--balance``): ``prior``, the logit adjustment (Menon et
  al., 2021): ``- log prior`` added to the scaled logits, the rule that minimises the balanced
  error, not tuned; or ``loss``, class weights in the fit. Never both: stacked, they pushed the
  rare class past balance (docs/training.md has the measurements).
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from trainer.learning.calibrate import fit_temperature

FOLDS = 5
MAX_ITER = 3000
Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Head:
    """A fitted head: ``served logits = ((f - mean) / std) @ weight.T + bias, / temperature +
    shift`` (the shift is the imbalance correction, 0 for the commonest class)."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)
    weight: np.ndarray  # (outputs, F)
    bias: np.ndarray  # (outputs,)
    temperature: float = 1.0
    shift: np.ndarray | None = None  # (outputs,)

    def raw(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias

    def logits(self, features: np.ndarray) -> np.ndarray:
        z = self.raw(features) / self.temperature
        return z if self.shift is None else z + self.shift


def fit_linear(
    views: np.ndarray, labels: np.ndarray, outputs: int, c: float, balanced: bool
) -> Head:
    """Standardise the rows of ``views`` ``(V, N, F)`` and fit the logistic regression."""
    v, n, f = views.shape
    rows = views.reshape(v * n, f).astype(np.float64)
    mean, std = rows.mean(0), rows.std(0)
    # A feature that never varies (a dead unit) is divided by a small typical scale, not 0.
    std = np.maximum(std, std.mean() * 1e-3 if std.mean() > 0 else 1.0)
    model = LogisticRegression(
        C=c, class_weight="balanced" if balanced else None, max_iter=MAX_ITER, tol=1e-6
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the tolerance is tighter than needed
        model.fit((rows - mean) / std, np.tile(labels, v), sample_weight=np.full(v * n, 1.0 / v))
    # A class absent from these rows (a fold without it) never wins: its logit is very low.
    weight, bias = np.zeros((outputs, f)), np.full(outputs, -1e4)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return Head(mean, std, weight, bias)


def folds(labels: Sequence[int], groups: Sequence[int], seed: int) -> Folds:
    """Up to :data:`FOLDS` folds, stratified by label, near-duplicate groups whole."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    k = min(FOLDS, len(np.unique(groups)), int(np.bincount(labels).max()))
    if k < 2:
        raise ValueError("cross-validation needs at least two groups of images")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class with fewer images than folds
        return list(splitter.split(np.zeros(len(labels)), labels, groups))


def out_of_fold(
    views: np.ndarray,
    labels: np.ndarray,
    scored: np.ndarray,
    splits: Folds,
    outputs: int,
    c: float,
    balanced: bool,
    trains: np.ndarray | None = None,
) -> np.ndarray:
    """Raw logits ``(N, outputs)`` of ``scored`` (each image's served features), each by a head
    fitted without its fold. ``trains`` marks the images a head may learn from (all by default)."""
    out = np.zeros((len(labels), outputs))
    for train, test in splits:
        if trains is not None:
            train = train[trains[train]]
        head = fit_linear(views[:, train], labels[train], outputs, c, balanced)
        out[test] = head.raw(scored[test])
    return out


def prior_shift(labels: np.ndarray, outputs: int, classes: int) -> np.ndarray:
    """``- log prior`` per class, 0 for the commonest and for a background output."""
    counts = np.bincount(labels[labels < classes], minlength=classes)[:classes]
    adjustment = -np.log(np.maximum(counts, 1) / max(counts.sum(), 1))
    return np.concatenate([adjustment - adjustment.min(), np.zeros(outputs - classes)])


def fit_head(
    views: np.ndarray,
    labels: np.ndarray,
    scored: np.ndarray,
    splits: Folds,
    outputs: int,
    classes: int,
    c: float,
    balance: str,
    trains: np.ndarray | None = None,
) -> tuple[Head, np.ndarray]:
    """The served head and its out-of-fold served logits: a temperature fitted out of fold, then
    the imbalance correction (``balance`` "prior"), then the fit on every image of ``trains``."""
    balanced = balance in ("loss", "sampler")
    raw = out_of_fold(views, labels, scored, splits, outputs, c, balanced, trains)
    fitted = np.ones(len(labels), bool) if trains is None else trains
    temperature = fit_temperature(raw[fitted], labels[fitted])
    shift = prior_shift(labels[fitted], outputs, classes) if balance == "prior" else None
    head = fit_linear(views[:, fitted], labels[fitted], outputs, c, balanced)
    head = Head(head.mean, head.std, head.weight, head.bias, temperature, shift)
    oof = raw / temperature
    return head, oof if shift is None else oof + shift
