"""The solved head's recipe on cached features, in one function (:func:`fit_recipe`), so that
the estimate can repeat it whole inside cross-validation (:func:`cross_validate`).

Images are the in-class photos (labels ``0 .. classes - 1``) and, with ``--negatives``, photos of
other things (label ``classes``). ``rows`` are the features a head trains on (the served view and
any augmented views), ``served`` the features of each image as the served graph sees it (with the
mirror image averaged in when the model serves it).
"""

from dataclasses import dataclass

import numpy as np

from trainer.learning.linear_solver import Folds, Head, fit_head, folds
from trainer.learning.rejection_rule import Rule, fit_rule


@dataclass(frozen=True)
class Settings:
    """What the recipe takes from the run's config."""

    c: float  # --head-c
    balance: str  # the resolved --balance
    accept_rate: float
    seed: int


@dataclass(frozen=True)
class Recipe:
    head: Head  # the classes' head: served logits
    rule: Rule  # "none of these"
    oof_logits: np.ndarray  # (N, classes): each image's served logits, out of fold
    oof_known: np.ndarray  # (N,): each image's known score, out of fold

    def predict(self, served: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Served logits ``(n, classes)`` and known scores ``(n,)``."""
        logits = self.head.logits(served)
        return logits, self.rule.known(served, logits.argmax(1))


def fit_recipe(
    rows: np.ndarray,
    served: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    classes: int,
    settings: Settings,
) -> Recipe:
    """The classes' head on the in-class photos; with negatives among the images, a background
    head on all of them; the rule set on the out-of-fold scores of both."""
    c, balance = settings.c, settings.balance
    splits: Folds = folds(labels, groups, settings.seed)
    inside = labels < classes
    head, oof = fit_head(rows, labels, served, splits, classes, classes, c, balance, inside)
    background = None
    if not inside.all():
        background = fit_head(rows, labels, served, splits, classes + 1, classes, c, balance)
    accept = settings.accept_rate
    rule, known = fit_rule(served, labels, oof.argmax(1), splits, classes, accept, background)
    return Recipe(head, rule, oof, known)


@dataclass(frozen=True)
class Estimate:
    """The recipe cross-validated whole (each outer fold makes every choice on its own training
    part): every image predicted by a model that did not see it."""

    labels: np.ndarray  # (N,) every image's label (``classes`` for a negative)
    predicted: np.ndarray  # (N,) the class it was given
    known: np.ndarray  # (N,) its known score: "unknown" below 0
    folds: int


def cross_validate(
    rows: np.ndarray,
    served: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    classes: int,
    settings: Settings,
) -> Estimate:
    predicted, known = np.zeros(len(labels), np.int64), np.zeros(len(labels))
    outer = folds(labels, groups, settings.seed + 1)  # not the folds the recipe chooses on
    for train, test in outer:
        part = (rows[:, train], served[train], labels[train], groups[train])
        recipe = fit_recipe(*part, classes, settings)
        logits, known[test] = recipe.predict(served[test])
        predicted[test] = logits.argmax(1)
    return Estimate(labels, predicted, known, len(outer))
