"""Calibration of a model's top-1 confidence: reliability bins (equal-width, ``(low, high]``) and
the expected calibration error, as in the reports' reliability diagrams."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin ``(low, high]`` (the first also holds 0): mean top-1 confidence and
    accuracy of its images; both ``None`` for an empty bin."""

    low: float
    high: float
    confidence: float | None
    accuracy: float | None
    count: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "accuracy": self.accuracy,
            "count": self.count,
        }


def _top1(
    probabilities: np.ndarray, y_true: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[0] != true.size:
        raise ValueError(f"need probabilities (N, C) for N={true.size} targets, got {probs.shape}")
    if true.size == 0:
        raise ValueError("calibration needs at least one scored image")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == true
    return confidence, correct


def reliability(
    probabilities: np.ndarray, y_true: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """Per-bin mean confidence, accuracy and count over ``bins`` equal-width bins of [0, 1]."""
    confidence, correct = _top1(probabilities, y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bins are (low, high]: a confidence of exactly 1.0 lands in the last bin, 0.0 in the first.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append(
            ReliabilityBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                confidence=float(confidence[mask].mean()) if count else None,
                accuracy=float(correct[mask].mean()) if count else None,
                count=count,
            )
        )
    return out


def expected_calibration_error(
    probabilities: np.ndarray, y_true: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> float:
    """Sum over bins of ``count / N * |accuracy - mean confidence|`` (top-1, equal-width bins)."""
    table = reliability(probabilities, y_true, bins)
    total = sum(b.count for b in table)
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.confidence)
            for b in table
            if b.count and b.accuracy is not None and b.confidence is not None
        )
    )
