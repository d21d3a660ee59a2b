"""The solved head's "none of these" rule, set out of fold (``trainer.model.open_set`` computes it
in the served graph; this module sets its numbers and computes the same in numpy).

* **Nearest photo of the predicted class.** Each image's cosine similarity to the nearest photo of
  the class predicted for it, among the photos its fold trained on. The threshold of class ``c``
  is a low quantile of the out-of-fold similarities of its own photos: ``KNN_QUANTILE`` (5%)
  alone, ``KNN_QUANTILE_WITH_NEGATIVES`` (1%) beside a background class. A class with fewer than
  20 photos gets its lowest one, so four photos of a rare class are not rejected wholesale.
* **Background class** (with negatives): ``1 - p(background)`` of a head trained with the
  negatives as one more class; its threshold is the largest that still lets ``accept_rate`` of
  the in-class photos (out of fold) pass both members.

Measured on realdev and realdev-ood (docs/training.md): the nearest photo carries to kinds no
negatives folder showed (people, food, textures); the background class catches the near kinds it
was shown (airliners, warplanes). Neither catches an empty sky or a light aircraft it has not seen.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.learning.linear_solver import Folds, Head

KNN_QUANTILE = 0.05
KNN_QUANTILE_WITH_NEGATIVES = 0.01
MARGIN = 1e-6  # below the out-of-fold score a threshold is set at: float32 must not flip it


def unit(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def nearest(
    query: np.ndarray, references: np.ndarray, reference_labels: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Cosine similarity of each ``query`` row to the nearest reference of its ``classes`` entry
    (-1 when that class has no reference)."""
    sims = unit(query) @ unit(references).T
    own = reference_labels[None, :] == np.asarray(classes)[:, None]
    return np.where(own, sims, -np.inf).max(axis=1, initial=-1.0)


@dataclass(frozen=True)
class Rule:
    """``known = min((nearest - knn_threshold[class]) / knn_scale, (1 - p_bg - bg_threshold) /
    bg_scale)``, the second member only with a background head; known when ``>= 0``."""

    references: np.ndarray  # (M, F) unit rows: every in-class photo's served features
    reference_labels: np.ndarray  # (M,)
    knn_threshold: np.ndarray  # (classes,)
    knn_scale: float
    background: Head | None = None
    bg_threshold: float = 0.0
    bg_scale: float = 1.0

    def known(self, features: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        near = nearest(features, self.references, self.reference_labels, predicted)
        known = (near - self.knn_threshold[predicted]) / self.knn_scale
        if self.background is None:
            return known
        return np.minimum(
            known, (background_score(self.background, features) - self.bg_threshold) / self.bg_scale
        )

    @property
    def method(self) -> str:
        return "background_class+nearest_photo" if self.background is not None else "nearest_photo"


def background_score(head: Head, features: np.ndarray) -> np.ndarray:
    """``1 - p(background)``: how much an image is one of the classes, to the background head."""
    z = head.logits(features)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return 1.0 - p[:, -1]


def oof_nearest(
    served: np.ndarray, labels: np.ndarray, predicted: np.ndarray, splits: Folds, classes: int
) -> np.ndarray:
    """Each image's similarity to the nearest in-class photo of its predicted class, among the
    photos its fold trained on."""
    out = np.zeros(len(labels))
    for train, test in splits:
        refs = train[labels[train] < classes]
        out[test] = nearest(served[test], served[refs], labels[refs], predicted[test])
    return out


def _quantile(scores: np.ndarray, q: float) -> float:
    ordered = np.sort(scores)
    return float(ordered[min(int(np.floor(q * len(ordered) + 1e-9)), len(ordered) - 1)])


def fit_rule(
    served: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    splits: Folds,
    classes: int,
    accept_rate: float,
    background: tuple[Head, np.ndarray] | None = None,
) -> tuple[Rule, np.ndarray]:
    """The rule and every image's out-of-fold ``known`` score (in-class and negatives alike).

    ``predicted`` is each image's out-of-fold class; ``background`` the background head with its
    out-of-fold served logits."""
    inside = labels < classes
    near = oof_nearest(served, labels, predicted, splits, classes)
    q = KNN_QUANTILE_WITH_NEGATIVES if background else KNN_QUANTILE
    knn_threshold = np.array(
        [_quantile(near[inside & (labels == c)], q) - MARGIN for c in range(classes)]
    )
    knn_scale = float(near[inside].std()) or 1.0
    knn = (near - knn_threshold[predicted]) / knn_scale
    references, reference_labels = unit(served[inside]), labels[inside]
    if background is None:
        return Rule(references, reference_labels, knn_threshold, knn_scale), knn
    head, oof_logits = background
    z = oof_logits - oof_logits.max(axis=1, keepdims=True)
    score = 1.0 - (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))[:, -1]
    passing = np.sort(score[inside & (knn >= 0)])[::-1]
    wanted = int(np.ceil(accept_rate * inside.sum() - 1e-9))
    bg_threshold = float(passing[min(wanted, len(passing)) - 1]) - MARGIN if len(passing) else 0.0
    bg_scale = float(score[inside].std()) or 1.0
    rule = Rule(
        references, reference_labels, knn_threshold, knn_scale, head, bg_threshold, bg_scale
    )
    return rule, np.minimum(knn, (score - bg_threshold) / bg_scale)


def per_class_rejected(
    known: np.ndarray, labels: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Out of fold, the share of each class's photos answered "unknown": a rule can buy its
    rejection of other things with a rare class's photos, and this shows it."""
    return {
        name: {"n": int((labels == c).sum()), "rejected": float(np.mean(known[labels == c] < 0))}
        for c, name in enumerate(names)
        if (labels == c).any()
    }
