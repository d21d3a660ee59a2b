"""Training checkpoints: atomic, self-describing, and checked for tearing on load.

A checkpoint file is ``torch.save`` of ``{"format", "sha256", "payload"}`` where ``payload`` is the
pickled-by-torch bytes of the real content, so a truncated or corrupted file is told apart from a
valid one with a clear message instead of an unpickling traceback.

Payload keys (all written by ``trainer.fit``; ``trainer.export`` reads them):
``arch, labels, spec (dict), dropout, model_state, epoch, metrics (dict), best_metric,
optimizer_state, scheduler_state, rng_state, options (dict), class_counts (dict),
split_manifest_sha256, run_id, git_commit, created``.
"""

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from shared.cli import UsageError
from shared.spec import PreprocessSpec
from trainer.atomic import atomic_path
from trainer.model import Classifier, build_model

FORMAT = "skyclass-checkpoint/1"
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(UsageError):
    """A checkpoint that is missing, torn, corrupt or not ours."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    wrapper = {"format": FORMAT, "sha256": hashlib.sha256(body).hexdigest(), "payload": body}
    with atomic_path(path) as tmp:
        torch.save(wrapper, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
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
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)


def model_from_checkpoint(payload: dict[str, Any]) -> Classifier:
    """Rebuild the trained classifier (eval mode) from a checkpoint payload; no download needed."""
    model = build_model(
        payload["arch"], len(payload["labels"]), weights="none", dropout=payload.get("dropout", 0.2)
    )
    model.load_state_dict(payload["model_state"])
    return model.eval()


def spec_from_checkpoint(payload: dict[str, Any]) -> PreprocessSpec:
    return PreprocessSpec.from_dict(payload["spec"])
