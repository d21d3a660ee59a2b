"""Class imbalance: whether to correct it (``--balance``) and the weights that do.

``auto`` corrects when the largest training class has 1.5x the images of the smallest or more;
the correction weights each class by ``total / (classes * count)``, so every class weighs the
same in the loss. A background class (``--negatives``) counts as one more class.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from trainer.learning.config import TrainConfig

IMBALANCE_RATIO = 1.5  # largest/smallest training class at which --balance auto balances


def balance_mode(config: TrainConfig, counts: Mapping[str, int]) -> str:
    """``--balance``, with auto resolved: a weighted loss when classes differ by 1.5x or more."""
    if config.balance != "auto":
        return config.balance
    smallest, largest = min(counts.values()), max(counts.values())
    return "loss" if largest >= IMBALANCE_RATIO * smallest else "none"


def class_counts(per_class: Sequence[int], negatives: int | None) -> np.ndarray:
    """Training images per output: the classes, then the background (at least 1) if any."""
    counts = np.array(per_class, dtype=np.float64)
    return counts if negatives is None else np.append(counts, max(negatives, 1))


def class_weights(counts: np.ndarray, mode: str) -> torch.Tensor:
    """Per-output loss weights: inverse frequency, or ones when ``mode`` is "none"."""
    if mode == "none":
        return torch.ones(len(counts))
    return torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)
