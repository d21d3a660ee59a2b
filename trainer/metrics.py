"""Classification metrics from predictions: confusion matrix and per-class precision/recall/F1."""

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class(cm: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{label: {precision, recall, f1, support}}``; 0.0 where a ratio is undefined."""
    out: dict[str, dict[str, float]] = {}
    for i, label in enumerate(labels):
        tp = float(cm[i, i])
        predicted, actual = float(cm[:, i].sum()), float(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}
    return out


def macro_f1(table: dict[str, dict[str, float]]) -> float:
    return float(np.mean([row["f1"] for row in table.values()])) if table else 0.0
