"""The point figures a regime chooses with (loss, accuracy, balanced accuracy, macro-F1).

Classes with no image in the scored set are left out of the class averages rather than counted
as zero. Intervals are the reports' business (``trainer.evaluation.metrics``).
"""

import numpy as np
import torch
from sklearn import metrics as skm
from torch.nn import functional as F  # noqa: N812 - the name every torch example uses


def val_scores(logits: np.ndarray, targets: np.ndarray, n_classes: int) -> dict[str, float]:
    """Cross-entropy of ``logits`` (N, ``n_classes``) and the figures of their argmax."""
    if len(targets) == 0:
        return {"loss": 0.0, "accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0}
    z = torch.as_tensor(logits[:, :n_classes], dtype=torch.float64)
    loss = float(F.cross_entropy(z, torch.as_tensor(targets, dtype=torch.int64)))
    predicted = np.asarray(logits)[:, :n_classes].argmax(1)
    present = np.unique(targets)
    _, recall, f1, _ = skm.precision_recall_fscore_support(
        targets, predicted, labels=present, zero_division=0
    )
    return {
        "loss": loss,
        "accuracy": float(skm.accuracy_score(targets, predicted)),
        "balanced_accuracy": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
    }
