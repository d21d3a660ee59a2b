"""Training checkpoints: a typed :class:`Checkpoint`, written atomically, checked for tearing on load.

A checkpoint file is ``torch.save`` of ``{"format", "sha256", "payload"}`` where ``payload`` is the
torch-pickled bytes of the checkpoint's fields, so a truncated or corrupted file is told apart from
a valid one with a clear message instead of an unpickling traceback.
"""

import dataclasses
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.cli import UsageError
from shared.spec import PreprocessSpec
from trainer.common.files import atomic_path
from trainer.learning.config import TrainConfig
from trainer.model.classifier import Classifier, build_model

FORMAT = "skyclass-checkpoint/2"
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(UsageError):
    """A checkpoint that is missing, torn, corrupt or not ours."""


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run."""

    run_id: str
    created: str  # UTC, ISO 8601
    git_commit: str
    weights_used: str  # what the backbone started from ("imagenet", a path, "random init")


@dataclass
class Checkpoint:
    """Everything a run needs to continue exactly, or to be exported.

    ``model_state`` is the whole classifier; in epochs, the optimizer, scheduler, AMP scaler and
    random states are those *after* ``epoch``, and ``best_*`` describe the epoch kept in
    ``best.pt``. ``val_*`` are the logits and figures the export chooses with: of the val images
    in epochs, out of fold over train + val for the solved head.
    """

    config: TrainConfig
    info: RunInfo
    labels: tuple[str, ...]
    split_sha256: str
    class_counts: dict[str, dict[str, int]]
    model_state: dict[str, torch.Tensor]
    epoch: int = 0  # epochs done (0 for the solved head)
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    weight_decay: float = 0.0  # the value this model trained with
    best_epoch: int = 0
    best_score: float = -1.0
    temperature: float | None = None  # chosen in training (cross-validation); None: fit on val
    val_targets: np.ndarray | None = None  # labels of the val_logits rows
    val_logits: np.ndarray | None = None  # (N, outputs): val (or out-of-fold) logits
    val_negative_logits: np.ndarray | None = None  # (N_val_negatives, outputs), with --negatives
    val_metrics: dict[str, Any] = field(default_factory=dict)
    # The solved head's "none of these" rule in the model: its method and out-of-fold scores.
    rejection: dict[str, Any] | None = None
    # Without a test split: the recipe cross-validated whole (labels, predictions, known scores).
    estimate: dict[str, Any] | None = None

    @property
    def spec(self) -> PreprocessSpec:
        return self.config.spec

    @property
    def background(self) -> bool:
        """The head has an extra last output for "none of these" (negatives, in epochs)."""
        return self.config.head_outputs(len(self.labels)) > len(self.labels)

    def model(self) -> Classifier:
        """The trained classifier in eval mode; needs no download."""
        c, state = self.config, self.model_state
        model = build_model(
            c.arch, c.head_outputs(len(self.labels)), "none", c.head, c.dropout, c.mirror
        )
        return model.load_trained(state).eval()


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    fields = {f.name: getattr(checkpoint, f.name) for f in dataclasses.fields(checkpoint)}
    fields["config"] = checkpoint.config.to_dict()
    fields["info"] = dataclasses.asdict(checkpoint.info)
    buffer = io.BytesIO()
    torch.save(fields, buffer)
    body = buffer.getvalue()
    wrapper = {"format": FORMAT, "sha256": hashlib.sha256(body).hexdigest(), "payload": body}
    with atomic_path(path) as tmp:
        torch.save(wrapper, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip/pickle errors all mean a torn or foreign file
        raise CheckpointError(
            f"checkpoint {path} is unreadable (torn or corrupt: {type(exc).__name__}); "
            "delete it to start over, or resume from another run"
        ) from None
    if not isinstance(wrapper, dict) or wrapper.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a skyclass checkpoint ({FORMAT})")
    body = wrapper.get("payload")
    if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != wrapper.get("sha256"):
        raise CheckpointError(f"checkpoint {path} fails its checksum (torn or corrupt)")
    fields = torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)
    fields["config"] = TrainConfig.from_dict(fields["config"])
    fields["info"] = RunInfo(**fields["info"])
    fields["labels"] = tuple(fields["labels"])
    return Checkpoint(**fields)
