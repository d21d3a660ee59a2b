"""The files an export writes into a run folder, and the measured facts about each.

``model.onnx`` (fp32) is always written; ``model.int8.onnx`` only when INT8 passed its gate and is
the one served, so the INT8 file exists exactly when it is the served file.
"""

from dataclasses import dataclass
from pathlib import Path

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
