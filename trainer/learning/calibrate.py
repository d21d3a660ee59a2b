"""Temperature scaling: one number, fitted on val, that makes the served probabilities honest.

A network trained to convergence on a small set is over-confident: it says 99% where it is right
80% of the time. Dividing the logits by a temperature ``T > 1`` (fitted to minimise the negative
log-likelihood of the val labels) fixes the confidence without changing any decision, since the
ranking of the classes stays the same. The exporter folds ``T`` into the graph, so the API's
probabilities are the calibrated ones.
"""

import numpy as np
import torch

MIN_T, MAX_T = 0.05, 20.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` in [0.05, 20] minimising the NLL of ``softmax(logits / T)`` on ``labels``."""
    if len(labels) == 0:
        return 1.0
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    # The NLL is convex in 1/T, so a bounded 1-D search finds the global minimum.
    grid = torch.exp(torch.linspace(np.log(MIN_T), np.log(MAX_T), 401, dtype=torch.float64))
    nll = torch.stack([torch.nn.functional.cross_entropy(z / t, y) for t in grid])
    best = int(torch.argmin(nll))
    lo, hi = grid[max(best - 1, 0)].item(), grid[min(best + 1, len(grid) - 1)].item()
    for _ in range(60):  # golden-section refinement inside the bracketing grid cells
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        fa = torch.nn.functional.cross_entropy(z / a, y).item()
        fb = torch.nn.functional.cross_entropy(z / b, y).item()
        lo, hi = (lo, b) if fa < fb else (a, hi)
    return float(np.clip((lo + hi) / 2, MIN_T, MAX_T))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def uncalibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities the model gave before its temperature: ``softmax(T * log p)``.

    ``log softmax(z / T) = z / T - c``, so this recovers ``softmax(z)`` exactly from what the
    served model answered, with no second pass over the images.
    """
    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-300, None))
    return softmax(logp, 1.0 / temperature)
