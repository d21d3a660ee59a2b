"""INT8 static quantization of the exported fp32 model, and the rule that decides whether to keep it.

QDQ format (QuantizeLinear/DequantizeLinear pairs around standard ops, which every onnxruntime the
bundle ships runs), per-channel int8 weights, uint8 activations whose ranges are calibrated (MinMax)
on training images preprocessed by the same numpy code the API uses. The final Softmax stays in
float so the served probabilities are not rounded to 1/256 steps.
"""

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from shared.model_contract import INPUT_NAME
from trainer.common.progress import hidden
from trainer.exporting.graph import ExportError, check_compatible, prune_opset_imports
from trainer.exporting.parity import PreparedImages

CALIBRATION_BATCH = 8


class _Calibration(CalibrationDataReader):
    """Feeds the calibrator batches of prepared training images, with a progress bar."""

    def __init__(self, images: PreparedImages):
        self._batches = images.batches(CALIBRATION_BATCH)
        self._bar = tqdm(
            total=len(images), desc="calibrate", unit="img", leave=False, disable=hidden()
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            self._bar.close()
            return None
        self._bar.update(len(batch[1]))
        return {INPUT_NAME: batch[1]}


def quantize_int8(fp32: onnx.ModelProto, calibration: PreparedImages) -> onnx.ModelProto:
    """The QDQ int8 version of ``fp32`` (metadata not carried over: the caller sets it)."""
    if len(calibration) == 0:
        raise ExportError("INT8 calibration needs training images; the train split is empty")
    with tempfile.TemporaryDirectory(prefix="skyclass-int8-") as tmp:
        source, prepared, quantized = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "q.onnx"))
        onnx.save_model(fp32, str(source))
        # Shape inference + onnxruntime's basic graph optimizations give the quantizer
        # cleaner patterns (Constant/Identity nodes folded away).
        quant_pre_process(str(source), str(prepared))
        graph = onnx.load(str(prepared)).graph
        # The softmax stays float (probabilities in 1/256 steps would mislead), and so does the
        # known-score module: its thresholds sit on similarities a few thousandths apart.
        kept_float = [
            node.name
            for node in graph.node
            if node.op_type == "Softmax" or "/known_score/" in node.name
        ]
        quantize_static(
            str(prepared),
            str(quantized),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=kept_float,
        )
        proto = onnx.load(str(quantized))
    proto = prune_opset_imports(proto)
    check_compatible(proto)
    return proto


def calibration_items(
    items: Sequence[tuple[Path, int]], count: int, n_classes: int
) -> list[tuple[Path, int]]:
    """Up to ``count`` training images taking classes in turn, so none is left out."""
    per_class: list[list[tuple[Path, int]]] = [[] for _ in range(n_classes)]
    for item in items:
        per_class[item[1]].append(item)
    chosen: list[tuple[Path, int]] = []
    for depth in range(max((len(c) for c in per_class), default=0)):
        chosen += [c[depth] for c in per_class if depth < len(c)]
    return chosen[:count]


MIN_AGREEMENT = 0.99  # top-1 agreement with fp32 on val and training images


@dataclass(frozen=True)
class Int8Decision:
    keep: bool
    reason: str
    agreement: float  # share of val + training images where int8's answer equals fp32's
    images: int  # how many images that share is over
    drop: float  # fp32 minus int8 val balanced accuracy (a fraction)


def decide_int8(
    fp32: np.ndarray,
    int8: np.ndarray,
    val_targets: np.ndarray,
    n_val: int,
    balanced_accuracy: Callable[[np.ndarray, np.ndarray], float],
    max_drop_points: float,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> Int8Decision:
    """Keep int8 when its top-1 agrees with fp32 on >= 99% of the images (val first, then
    training images) and its val balanced accuracy is at most ``max_drop_points`` below fp32's.

    ``fp32``/``int8`` are probabilities on the same images, the first ``n_val`` of them val.
    """
    same = fp32.argmax(1) == int8.argmax(1)
    if known is not None:  # the answer is the class and whether it is known: both must agree
        same &= (known[0] >= 0) == (known[1] >= 0)
    agreement = float(np.mean(same)) if len(fp32) else 0.0
    fp32_bal = balanced_accuracy(fp32[:n_val], val_targets)
    int8_bal = balanced_accuracy(int8[:n_val], val_targets)
    drop = fp32_bal - int8_bal
    numbers = (
        f"top-1 agreement with fp32 {agreement:.1%} on {len(fp32)} val + training images "
        f"(needs >= {MIN_AGREEMENT:.0%}); val balanced accuracy {int8_bal:.3f} vs fp32 "
        f"{fp32_bal:.3f} (drop {100 * drop:+.2f} points, limit {max_drop_points:.2f})"
    )
    keep = agreement >= MIN_AGREEMENT and drop <= max_drop_points / 100 + 1e-9
    verdict = "int8 kept" if keep else "int8 rejected, fp32 served"
    return Int8Decision(keep, f"{verdict}: {numbers}", agreement, len(fp32), drop)
