"""The solved head's mathematics: a linear classifier on cached, standardised features, fitted to
convergence, and its choices made by cross-validation.

With the backbone frozen, training the head is a convex problem (class-weighted cross-entropy
plus an L2 penalty on the weights), so it is solved outright with full-batch L-BFGS instead of
epochs of SGD: nothing to early-stop, no learning rate. Its choices are made by cross-validation
over every non-test image (train + val, folds stratified by class and keeping near-duplicate groups
whole): each image is scored by a head that did not see it (out-of-fold), and

* the L2 strength is the one whose out-of-fold predictions have the lowest negative
  log-likelihood at their own best temperature;
* the softmax temperature is fitted on those out-of-fold logits;
* a prior correction ``alpha * -log(prior)`` (0 for the commonest class) is added to the scaled
  logits, so a class with a handful of photos is still predicted: class weighting alone left
  Winged Drones at a third of its recall on realdev (docs/training.md has the measurements);

then the head is refitted on all of train + val with that strength. Each training image counts
once however many views it has (each view weighs 1/views), so the views add augmentation, not
weight.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812 - the name every torch example uses

from trainer.learning.calibrate import fit_temperature

# L2 strengths tried (the features are standardised, so one grid fits every backbone).
STRENGTHS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
FOLDS = 5
PRIOR_ALPHA = 0.75


@dataclass(frozen=True)
class LinearFit:
    """A fitted head: standardisation and weights, in the form the classifier's head takes."""

    mean: torch.Tensor  # (F,)
    std: torch.Tensor  # (F,)
    weight: torch.Tensor  # (outputs, F)
    bias: torch.Tensor  # (outputs,)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias


@dataclass(frozen=True)
class Choice:
    """What cross-validation chose. The served logits are ``(z + bias_shift) / temperature`` for
    a head's raw logits ``z``: the prior correction folded into the bias, then one temperature."""

    strength: float
    temperature: float
    bias_shift: np.ndarray  # (outputs,)
    oof_logits: np.ndarray  # (N, outputs), bias shift included: each image by a head without it
    table: list[dict[str, float]]  # per strength: out-of-fold NLL, accuracy, balanced accuracy


def standardiser(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of training rows (a dead feature gets a small typical scale, not 0)."""
    rows = rows.double()
    std = rows.std(0)
    floor = float(std.mean()) * 1e-3 if float(std.mean()) > 0 else 1.0
    return rows.mean(0).float(), std.clamp_min(floor).float()


def fit(
    views: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor,
    strength: float,
    max_iter: int = 500,
) -> LinearFit:
    """Minimise mean(weighted CE) + strength / 2 * ||W||^2 over the rows of ``views`` (V, N, F)."""
    v, n, f = views.shape
    rows = views.reshape(v * n, f)
    mean, std = standardiser(rows)
    x = ((rows - mean) / std).float()
    y = labels.repeat(v)
    w = class_weight[y] / v
    w = w / w.sum()
    outputs = len(class_weight)
    weight = torch.zeros(outputs, f, requires_grad=True)
    bias = torch.zeros(outputs, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        ce = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (w * ce).sum() + 0.5 * strength * (weight * weight).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearFit(mean, std, weight.detach(), bias.detach())


def folds(labels: Sequence[int], groups: Sequence[int], k: int, seed: int) -> list[np.ndarray]:
    """``k`` folds of image indices: each class's near-duplicate groups dealt round-robin after a
    seeded shuffle, staggered across classes so tiny classes do not all land in one fold."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        by_class[int(label)][int(group)].append(i)
    fold_of: dict[int, int] = {}
    offset = 0
    for label in sorted(by_class):
        members = [by_class[label][g] for g in sorted(by_class[label])]
        for j in rng.permutation(len(members)):
            for i in members[j]:
                fold_of.setdefault(i, offset % k)
            offset += 1
    out = [
        np.array(sorted(i for i, f in fold_of.items() if f == j), dtype=np.int64) for j in range(k)
    ]
    return [f for f in out if len(f)]


def _nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    z = torch.as_tensor(logits / temperature, dtype=torch.float64)
    return float(F.cross_entropy(z, torch.as_tensor(targets)))


def prior_adjustment(labels: Sequence[int], outputs: int, classes: int) -> np.ndarray:
    """``alpha * -log(prior)`` per class, 0 for the commonest; 0 for a background output."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=outputs)[:classes]
    prior = np.maximum(counts, 1) / max(counts.sum(), 1)
    adjustment = -PRIOR_ALPHA * np.log(prior)
    adjustment -= adjustment.min()
    return np.concatenate([adjustment, np.zeros(outputs - classes)])


def choose(
    views: torch.Tensor,
    labels: torch.Tensor,
    groups: Sequence[int],
    class_weight: torch.Tensor,
    classes: int,
    seed: int,
    strengths: Sequence[float] = STRENGTHS,
) -> Choice:
    """Cross-validate ``strengths``; return the chosen one with its temperature and adjustment."""
    y = labels.numpy()
    splits = folds(y, groups, FOLDS, seed)
    order = np.concatenate(splits)
    table, best = [], None
    for strength in strengths:
        oof = np.zeros((len(y), len(class_weight)))
        for held in splits:
            keep = np.setdiff1d(np.arange(len(y)), held)
            head = fit(views[:, keep], labels[keep], class_weight, strength)
            oof[held] = head.logits(views[0, held]).numpy()
        t = fit_temperature(oof[order], y[order])
        nll = _nll(oof[order], y[order], t)
        predicted = oof[:, :classes].argmax(1)
        present = [c for c in range(classes) if (y == c).any()]
        table.append(
            {
                "strength": strength,
                "oof_nll": nll,
                "oof_accuracy": float(np.mean(predicted[y < classes] == y[y < classes])),
                "oof_balanced_accuracy": float(
                    np.mean([np.mean(predicted[y == c] == c) for c in present])
                ),
                "temperature": t,
            }
        )
        if best is None or nll < best[0]:
            best = (nll, strength, t, oof)
    assert best is not None
    _, strength, t, oof = best
    adjustment = prior_adjustment(y, len(class_weight), classes)
    # The correction moves probabilities, so the temperature is refitted on top of it:
    # softmax((z / t + a) / t2) = softmax((z + t * a) / (t * t2)).
    t2 = fit_temperature(oof[order] / t + adjustment, y[order])
    shift = t * adjustment
    return Choice(strength, t * t2, shift, oof + shift, table)
