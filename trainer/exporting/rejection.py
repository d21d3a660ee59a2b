"""Answering "none of these": the score that says how much an image is one of the classes, the
threshold set on the run's own choosing data, and the figures that say how well it separates.

Two rules, picked by whether the run had negatives (photos of none of the classes):

* ``background_class`` (with ``--negatives``): the head learnt one more output for them, and the
  score is ``1 - p(background)``. Measured on realdev / realdev-ood (docs/training.md): AUROC
  0.97 against unseen negatives where the maximum probability alone reaches 0.71, because ImageNet
  features put airliners next to winged drones and only examples teach the head otherwise.
* ``max_probability`` (without): the top class probability of the calibrated softmax, the best
  score the model alone gives.

Either way the threshold is the score below which the least-scoring ``1 - accept_rate`` of the
in-class val images fall: so that ``accept_rate`` of photos of the classes pass.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from shared.model_contract import KNOWN_SCORE_OUTPUT, Rejection
from trainer.learning.calibrate import softmax
from trainer.learning.checkpoint import Checkpoint


def known_scores(logits: np.ndarray, temperature: float, background: bool) -> np.ndarray:
    """The score the exported graph computes, from the trainer's logits."""
    p = softmax(np.asarray(logits, dtype=np.float64), temperature)
    return 1.0 - p[:, -1] if background else p.max(axis=1)


def acceptance_threshold(scores: np.ndarray, accept_rate: float) -> float:
    """The largest threshold that still lets ``accept_rate`` of ``scores`` pass (``>=``)."""
    if len(scores) == 0:
        return 0.0  # no val image: nothing to set it on, so nothing is rejected
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    rejected = int(np.floor((1.0 - accept_rate) * len(ordered) + 1e-9))
    # A hair below the val score it is set at: the served float32 graph must not reject that
    # very image over a rounding difference from the trainer's float64.
    return float(ordered[min(rejected, len(ordered) - 1)]) - 1e-6


@dataclass(frozen=True)
class Separation:
    """How a threshold splits in-class images from negatives."""

    threshold: float
    in_class: int
    in_class_accepted: float  # share of in-class images answered as one of the classes
    negatives: int
    negatives_rejected: float | None  # share of negatives answered "unknown" (None: no negatives)
    auroc: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "in_class": self.in_class,
            "in_class_accepted": self.in_class_accepted,
            "negatives": self.negatives,
            "negatives_rejected": self.negatives_rejected,
            "auroc": self.auroc,
        }


def separation(in_class: np.ndarray, negatives: np.ndarray, threshold: float) -> Separation:
    in_class, negatives = np.asarray(in_class, float), np.asarray(negatives, float)
    both = len(in_class) and len(negatives)
    return Separation(
        threshold=threshold,
        in_class=len(in_class),
        in_class_accepted=float(np.mean(in_class >= threshold)) if len(in_class) else 0.0,
        negatives=len(negatives),
        negatives_rejected=float(np.mean(negatives < threshold)) if len(negatives) else None,
        auroc=_auroc(in_class, negatives) if both else None,
    )


def _auroc(in_class: np.ndarray, negatives: np.ndarray) -> float:
    """P(an in-class image scores above a negative), ties counting half."""
    truth = np.concatenate([np.ones(len(in_class)), np.zeros(len(negatives))])
    return float(roc_auc_score(truth, np.concatenate([in_class, negatives])))


def rule(ckpt: Checkpoint, temperature: float) -> Rejection:
    """The rule the exported model carries. The solved head set its own, inside the model (its
    known score is 0 at the threshold); in epochs it is set here on the val logits."""
    if ckpt.rejection is not None:
        return _solved_head_rule(ckpt)
    config, background = ckpt.config, ckpt.background
    scores = known_scores(ckpt.val_logits, temperature, background)
    threshold = acceptance_threshold(scores, config.accept_rate)
    negatives = (
        ckpt.val_negative_logits if ckpt.val_negative_logits is not None else np.zeros((0, 1))
    )
    neg = known_scores(negatives, temperature, background) if len(negatives) else np.zeros(0)
    return Rejection(
        method="background_class" if background else "max_probability",
        score=KNOWN_SCORE_OUTPUT if background else "max_probability",
        threshold=threshold,
        accept_rate=config.accept_rate,
        details={"val": separation(scores, neg, threshold).to_dict(), "set_on": config.chosen_on},
    )


def _solved_head_rule(ckpt: Checkpoint) -> Rejection:
    chosen = ckpt.rejection or {}
    kinds = np.asarray(chosen["negative_kinds"], dtype=object)
    negatives = np.asarray(chosen["negative_known_scores"], float)
    by_kind = {
        kind: {
            "n": int((kinds == kind).sum()),
            "rejected": float(np.mean(negatives[kinds == kind] < 0)),
        }
        for kind in sorted(set(kinds))
    }
    val = separation(np.asarray(chosen["known_scores"], float), negatives, 0.0).to_dict()
    return Rejection(
        method=chosen["method"],
        score=KNOWN_SCORE_OUTPUT,
        threshold=0.0,
        accept_rate=ckpt.config.accept_rate,
        details={
            "val": val | {"by_kind": by_kind},
            "set_on": ckpt.config.chosen_on,
            "per_class_rejected": chosen["per_class_rejected"],
        },
    )


def rule_line(rejection: Rejection) -> str:
    val, where = rejection.details["val"], rejection.details["set_on"]
    negatives = (
        f", {val['negatives_rejected']:.1%} of {val['negatives']} negatives rejected"
        f" (AUROC {val['auroc']:.3f})"
        if val["negatives"]
        else " (no negatives: --negatives DIR teaches the model what to reject)"
    )
    return (
        f"'unknown' below {rejection.score} {rejection.threshold:.4f} ({rejection.method}): "
        f"{val['in_class_accepted']:.1%} of {val['in_class']} in-class images pass ({where})"
        f"{negatives}"
    )
