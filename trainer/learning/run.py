"""What both regimes share: one run's data, device, class weights, checkpoints and history.

A regime (:class:`trainer.learning.solved_head.SolvedHead`, the default, or
:class:`trainer.learning.epochs.Epochs`) is a :class:`Run` that knows how to train. Its
``fit()`` returns an exit status and sets ``done``; ``best`` is then the checkpoint to export.
The test split is never looked at here.

Class imbalance (``--balance``), one correction at a time: the solved head adds ``-log prior`` to
its logits (``prior``, its default; ``trainer.learning.linear_solver``); in epochs, ``auto``
weights the loss when the largest training class has 1.5x the images of the smallest or more, each
class by ``total / (classes * count)`` so every class weighs the same; a background class
(``--negatives``) counts as one more class.
"""

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm
from torch.nn import functional as F  # noqa: N812 - the name every torch example uses

from shared.cli import UsageError
from trainer.common.files import atomic_write_text, write_json
from trainer.data.manifest import Manifest
from trainer.learning.checkpoint import Checkpoint, RunInfo
from trainer.learning.config import SOLVED_HEAD, RunFlags, TrainConfig
from trainer.learning.engine import Engine
from trainer.model.classifier import Classifier

Log = Callable[[str], None]


IMBALANCE_RATIO = 1.5  # largest/smallest training class at which --balance auto balances


def balance_mode(config: TrainConfig, counts: Mapping[str, int]) -> str:
    """``--balance``, with auto resolved: the solved head's logit adjustment (``prior``), or in
    epochs a weighted loss when classes differ by 1.5x or more."""
    if config.balance != "auto":
        return config.balance
    if config.regime_name == SOLVED_HEAD:
        return "prior"
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


def val_scores(logits: np.ndarray, targets: np.ndarray, n_classes: int) -> dict[str, float]:
    """Cross-entropy of ``logits`` (N, ``n_classes``) and the figures of their argmax: what a
    regime chooses with. Classes with no image are left out of the class averages."""
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


HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"


def write_history(run_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    """history.csv and history.json: one row per epoch, or per L2 strength for the solved head."""
    flat = [{k: v for k, v in row.items() if not isinstance(v, dict)} for row in rows]
    buffer = io.StringIO()
    columns = list(flat[0]) if flat else ["epoch"]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(run_dir / HISTORY_CSV, buffer.getvalue())
    write_json(run_dir / HISTORY_JSON, list(rows))


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpu_threads(requested: int, log: Log) -> int:
    """``--threads``, or one per core unless the machine is already busy.

    Torch's CPU threads spin while waiting for each other; on a CPU that other processes keep
    busy (load average >= cores) two threads measured 5-20x slower than one, so take one then.
    """
    if requested:
        return requested
    cores = os.cpu_count() or 1
    if cores > 1 and os.getloadavg()[0] >= cores:
        log(f"the CPU is busy (load {os.getloadavg()[0]:.1f} on {cores} cores): using 1 thread")
        return 1
    return torch.get_num_threads()


class Run:
    """One run's model, data and bookkeeping, from a fresh start or from ``last.pt``.

    Photos of none of the classes (``--negatives``) train an extra background output, index
    ``len(labels)``; val negatives are scored beside val for the "unknown" rule.
    """

    def __init__(
        self,
        config: TrainConfig,
        flags: RunFlags,
        manifest: Manifest,
        model: Classifier,
        info: RunInfo,
        run_dir: Path,
        log: Log = print,
    ):
        self.config, self.flags, self.manifest, self.model = config, flags, manifest, model
        self.info, self.run_dir, self.log = info, run_dir, log
        self.labels = manifest.labels
        self.device = resolve_device(flags.device)
        torch.set_num_threads(cpu_threads(flags.threads, log))
        self.engine = Engine(self.device, flags.progress)
        k = len(self.labels)
        self.background = bool(manifest.negatives)
        self.train_items = manifest.split("train") + [
            (path, k) for path in manifest.negative_split("train")
        ]
        self.val_items = manifest.split("val")
        self.val_negatives = [(path, k) for path in manifest.negative_split("val")]
        self.groups = {Path(manifest.root) / it.path: it.group for it in manifest.items}
        self.groups |= {
            Path(manifest.negatives_root) / it.path: it.group for it in manifest.negatives
        }
        counts = manifest.counts()["train"]
        self.balance = balance_mode(config, counts)
        self.counts = class_counts(
            [counts[label] for label in self.labels],
            len(manifest.negative_split("train")) if self.background else None,
        )
        self.class_weight = class_weights(self.counts, self.balance)
        self.model.to(self.device)
        n_blocks = len(model.blocks)
        unfrozen = n_blocks if config.unfreeze_last < 0 else min(config.unfreeze_last, n_blocks)
        self.trainable_blocks = model.freeze_backbone(unfrozen)
        self.history: list[dict[str, Any]] = []
        self.done = False
        self.best: Checkpoint | None = None  # what to export, once done
        self.timings: dict[str, float] = {}

    def checkpoint(self, **fields: Any) -> Checkpoint:
        """The run as it stands (model, random state, history), plus a regime's own ``fields``."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return Checkpoint(
            config=self.config,
            info=self.info,
            labels=self.labels,
            split_sha256=self.manifest.sha256(),
            class_counts=self.manifest.counts(),
            model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            rng_state=rng,
            history=list(self.history),
            **fields,
        )

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt`` (``last.pt``): the model, the history, the random state."""
        self.model.load_trained(ckpt.model_state)
        self.history = list(ckpt.history)
        if "torch" in ckpt.rng_state:
            torch.set_rng_state(ckpt.rng_state["torch"])
        if "numpy" in ckpt.rng_state:
            np.random.set_state(ckpt.rng_state["numpy"])

    def fit(self) -> int:
        """Train; return an exit status (0 done or stopped as asked, 130 interrupted)."""
        raise NotImplementedError

    def where(self) -> str:
        """How far a resumed run had got, for the log."""
        raise NotImplementedError
