"""What both regimes share: one run's data, device, class weights and checkpoints.

A regime (:class:`trainer.learning.solved_head.SolvedHead`, the default, or
:class:`trainer.learning.epochs.Epochs`) is a :class:`Run` that knows how to train. Its
``fit()`` returns an exit status and sets ``done``; ``best`` is then the checkpoint to export.
The test split is never looked at here.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.cli import UsageError
from trainer.data.manifest import Manifest
from trainer.learning.balance import balance_mode, class_counts, class_weights
from trainer.learning.checkpoint import Checkpoint, RunInfo
from trainer.learning.config import RunFlags, TrainConfig
from trainer.learning.engine import Engine
from trainer.model.classifier import Classifier

Log = Callable[[str], None]


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
        self.model.load_state_dict(ckpt.model_state)
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
