"""The export's steps, in the order ``python -m trainer.export`` runs them:

1. :func:`load`: the run's checkpoint (read once, or handed over by ``trainer.fit``), its split,
   the classifier it builds;
2. :func:`temperature`: the one the run chose (out of fold), or one fitted on val;
3. :func:`fp32_with_parity`: the fp32 graph, which must answer like PyTorch (the parity gate);
4. :func:`int8`: the quantized graph and whether it may be served;
5. :func:`with_metadata`: the contract, the rejection rule and the provenance into each file;
6. ``trainer.exporting.parity``: the bytes under the Lambda runtime;
7. :func:`write`: the files, atomically, and nothing before every check passed.

Nothing here looks at the test split or trains anything.
"""

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from sklearn.metrics import balanced_accuracy_score

from shared import ModelContract
from shared.model_contract import INPUT_NAME, Rejection
from trainer.data.manifest import FILENAME as SPLIT_FILE
from trainer.data.manifest import Manifest
from trainer.exporting.graph import ExportError, load_session, save_onnx, to_onnx_model
from trainer.exporting.parity import (
    ParityReport,
    PreparedImages,
    check_parity,
    onnx_outputs,
    prepare_images,
)
from trainer.exporting.publish import INT8_FILE, MODEL_FILE
from trainer.exporting.quantize import Int8Decision, calibration_items, decide_int8, quantize_int8
from trainer.learning.calibrate import fit_temperature
from trainer.learning.checkpoint import BEST, Checkpoint, load_checkpoint
from trainer.model.classifier import Classifier

GATE_TRAIN_IMAGES = 64  # training images added to val for the parity gate and INT8 agreement


@dataclass(frozen=True)
class Inputs:
    run_dir: Path
    checkpoint: Checkpoint
    manifest: Manifest
    model: Classifier

    @property
    def val_targets(self) -> np.ndarray:
        return np.array([y for _, y in self.manifest.split("val")], dtype=np.int64)


def load(run_dir: Path, checkpoint: Checkpoint | None = None) -> Inputs:
    """The run's checkpoint and split, checked against each other (one-line errors)."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir} is not a run folder (expected the output of trainer.fit)")
    if checkpoint is None:
        if not (run_dir / BEST).is_file():
            raise ExportError(
                f"no checkpoint in {run_dir}: {BEST} is missing (did trainer.fit finish?)"
            )
        checkpoint = load_checkpoint(run_dir / BEST)
    try:
        manifest = Manifest.load(run_dir)
    except FileNotFoundError:
        raise ExportError(f"no {SPLIT_FILE} in {run_dir}: cannot find the splits") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{run_dir / SPLIT_FILE} is malformed: {exc}") from None
    if checkpoint.labels != manifest.labels:
        raise ExportError(
            f"checkpoint labels {list(checkpoint.labels)} do not match {SPLIT_FILE} labels "
            f"{list(manifest.labels)}: the checkpoint belongs to another run"
        )
    if checkpoint.split_sha256 != manifest.sha256():
        raise ExportError(
            f"{SPLIT_FILE} changed since training (sha256 {manifest.sha256()[:12]}, checkpoint "
            f"recorded {checkpoint.split_sha256[:12]}): the splits are not the ones trained with"
        )
    if checkpoint.val_logits is None or checkpoint.val_targets is None:
        raise ExportError(f"{run_dir / BEST} has no val logits: re-train it with this trainer")
    try:
        model = checkpoint.model()
    except (RuntimeError, KeyError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"checkpoint {run_dir / BEST} does not build a model: {first}") from None
    return Inputs(run_dir, checkpoint, manifest, model)


def temperature(ckpt: Checkpoint) -> tuple[float, str]:
    """The softmax temperature folded into the graph, and where it came from, in words."""
    if not ckpt.config.calibrate:
        return 1.0, "not fitted (--no-calibrate)"
    if ckpt.temperature is not None:  # chosen in training, on out-of-fold logits
        return ckpt.temperature, f"fitted on {ckpt.config.chosen_on}"
    classes = len(ckpt.labels)
    return fit_temperature(
        ckpt.val_logits[:, :classes], ckpt.val_targets
    ), "fitted on the val images"


def balanced(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(balanced_accuracy_score(targets, probabilities.argmax(1))) if len(targets) else 0.0


def fp32_with_parity(
    inputs: Inputs, temperature: float
) -> tuple[onnx.ModelProto, ParityReport, PreparedImages]:
    """The fp32 graph, and its parity with PyTorch on the val images and some training images
    (raises :class:`trainer.exporting.parity.ParityError` when they disagree)."""
    ckpt, manifest = inputs.checkpoint, inputs.manifest
    gate_items = manifest.split("val") + manifest.split("train")[:GATE_TRAIN_IMAGES]
    gate = prepare_images(gate_items, ckpt.spec, desc="val + training images")
    contract = ModelContract(ckpt.labels, ckpt.spec, {})
    proto = to_onnx_model(inputs.model, contract, temperature, ckpt.background)
    session = load_session(proto.SerializeToString())
    return proto, check_parity(inputs.model, session, gate, temperature, ckpt.background), gate


def int8(
    inputs: Inputs, fp32: onnx.ModelProto, parity: ParityReport, gate: PreparedImages
) -> tuple[onnx.ModelProto, Int8Decision, np.ndarray]:
    """The INT8 graph, calibrated on training images, its verdict and its answers on the gate."""
    ckpt, manifest, n_val = inputs.checkpoint, inputs.manifest, len(inputs.val_targets)
    config = ckpt.config
    items = calibration_items(manifest.split("train"), config.calibration_images, len(ckpt.labels))
    proto = quantize_int8(fp32, prepare_images(items, ckpt.spec, desc="calibration images"))
    outputs = onnx_outputs(load_session(proto.SerializeToString()), gate, desc="int8")
    known = (parity.known, outputs[1]) if parity.known is not None else None
    verdict = decide_int8(
        parity.probabilities, outputs[0], inputs.val_targets, n_val, balanced,
        config.int8_max_drop, known,
    )  # fmt: skip
    return proto, verdict, outputs[0]


def info(inputs: Inputs, precision: str, **extra: Any) -> dict[str, Any]:
    """``skyclass.info`` for one file: provenance, data, val figures. No test figure ever goes
    into the file: the served bytes must not depend on the test split."""
    ckpt, manifest = inputs.checkpoint, inputs.manifest
    return {
        "model_version": f"{ckpt.info.run_id}-{precision}",
        "run_id": ckpt.info.run_id,
        "precision": precision,
        "created": ckpt.info.created,
        "git_commit": ckpt.info.git_commit,
        "arch": ckpt.config.arch,
        "head": ckpt.config.head,
        "mirror": ckpt.config.mirror,  # the graph averages the image and its mirror image
        "weights": ckpt.info.weights_used,
        "epoch": ckpt.best_epoch,
        "weight_decay": ckpt.weight_decay,
        "split_manifest_sha256": manifest.sha256(),
        "class_counts": manifest.counts(),
        "output": "probabilities (temperature-scaled softmax inside the graph)",
        **extra,
    }


def with_metadata(
    proto: onnx.ModelProto, inputs: Inputs, info: dict[str, Any], rejection: Rejection
) -> bytes:
    ckpt = inputs.checkpoint
    contract = ModelContract(ckpt.labels, ckpt.spec, info, rejection)
    onnx.helper.set_model_props(proto, contract.to_metadata())
    return proto.SerializeToString()


def latency_ms(data: bytes, x: np.ndarray, runs: int) -> float:
    """Median wall time of one single-image ``run`` after warm-up."""
    session = load_session(data)
    feed = {INPUT_NAME: x[:1]}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def write(run_dir: Path, files: dict[str, bytes]) -> Path:
    """Every file, atomically; a stale INT8 file from an earlier export goes. Returns the served
    file (the INT8 one exactly when it was kept)."""
    for name, data in files.items():
        save_onnx(onnx.load_from_string(data), run_dir / name)
    if INT8_FILE not in files:
        (run_dir / INT8_FILE).unlink(missing_ok=True)
    return run_dir / (INT8_FILE if INT8_FILE in files else MODEL_FILE)
