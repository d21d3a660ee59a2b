"""The files an export leaves in a run folder, and publishing the served one where the Chalice
app loads it (git-ignored), atomically.

``model.onnx`` (fp32) is always written; ``model.int8.onnx`` only when INT8 passed its gate and is
the one served, so the INT8 file exists exactly when it is the served file. ``metrics.json``
records the hashes that tie the export to its checkpoint, so a later publish can tell it is
current.

Only ``model.onnx`` is written there: the labels, preprocessing and provenance travel inside it.
The file is checked before it replaces the served one: it must load in onnxruntime and carry a
readable contract, so a bad export can never take the place of a good model. Only onnxruntime
and the contract are needed, so publishing an exported run takes a moment, not an export.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from shared.cli import UsageError
from shared.model_contract import ContractError, ModelContract
from shared.paths import PUBLISHED_MODEL
from trainer.common.files import atomic_write_bytes, sha256_file

MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
METRICS_JSON = "metrics.json"  # the export's figures, and the hashes that tie it to its checkpoint


def served_file(run_dir: Path) -> Path | None:
    """The model a run serves: its INT8 file when there is one, else its fp32 file, else None."""
    for name in (INT8_FILE, MODEL_FILE):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


@dataclass(frozen=True)
class ModelStats:
    """Measured facts about one exported file (fp32 or int8)."""

    precision: str  # "fp32" or "int8"
    size_bytes: int
    val_balanced_accuracy: float  # a fraction, on the val images (see run_summary.val_figure_note)
    latency_ms: float  # median single-image onnxruntime latency on this machine

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


class PublishError(UsageError):
    """The file is not a model the API can serve."""


def publish_model(source: Path, target: Path = PUBLISHED_MODEL) -> Path:
    """Copy ``source`` to ``target`` (atomically, creating its folder) after checking it."""
    import onnxruntime as ort

    data = Path(source).read_bytes()
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several pybind types for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise PublishError(
            f"refusing to publish {source}: onnxruntime cannot load it: {first}"
        ) from None
    try:
        ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    except ContractError as exc:
        raise PublishError(f"refusing to publish {source}: {exc}") from None
    return atomic_write_bytes(target, data)


def source_record(checkpoint: Path, served: Path) -> dict[str, str]:
    """What an export records in ``metrics.json`` so a later publish can tell it is current."""
    return {
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": sha256_file(checkpoint),
        "served_file": served.name,
        "served_sha256": sha256_file(served),
    }


def current_export(run_dir: Path) -> Path | None:
    """The served file of a run whose export is current (made from its present checkpoint and
    unchanged since), else ``None``."""
    try:
        source = json.loads((run_dir / METRICS_JSON).read_text(encoding="utf-8"))["source"]
        served = run_dir / source["served_file"]
        current = sha256_file(run_dir / source["checkpoint"]) == source["checkpoint_sha256"]
        return served if current and sha256_file(served) == source["served_sha256"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def published_line(source: Path, published: Path) -> str:
    precision = "int8" if source.name == INT8_FILE else "fp32"
    return (
        f"published {precision} model to {published} (sha256 "
        f"{sha256_file(published)[:12]}); serve it with: cd classify_api && "
        "../.venv/bin/chalice local"
    )
