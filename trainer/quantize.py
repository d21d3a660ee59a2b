"""INT8 static quantization of the exported fp32 model, and the rule that decides whether to keep it.

QDQ format (QuantizeLinear/DequantizeLinear pairs around standard ops, which every onnxruntime the
bundle ships runs), per-channel int8 weights, uint8 activations whose ranges are calibrated (MinMax)
on training images preprocessed by the same numpy code the API uses. The final Softmax stays in
float so the served probabilities are not rounded to 1/256 steps.
"""

import tempfile
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
from trainer.onnx_export import ExportError, check_compatible, prune_opset_imports
from trainer.parity import PreparedImages

CALIBRATION_BATCH = 8
DEFAULT_MAX_DROP = 1.0  # accuracy points int8 may lose against fp32 and still be served


class _Calibration(CalibrationDataReader):
    """Feeds the calibrator batches of prepared training images, with a progress bar."""

    def __init__(self, images: PreparedImages):
        self._batches = images.batches(CALIBRATION_BATCH)
        self._bar = tqdm(total=len(images), desc="calibrate", unit="img", leave=False, disable=None)

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
        softmax = [node.name for node in graph.node if node.op_type == "Softmax"]
        quantize_static(
            str(prepared),
            str(quantized),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=softmax,
        )
        proto = onnx.load(str(quantized))
    proto = prune_opset_imports(proto)
    check_compatible(proto)
    return proto


@dataclass(frozen=True)
class Int8Decision:
    keep: bool
    reason: str


def decide_int8(fp32_accuracy: float, int8_accuracy: float, max_drop: float) -> Int8Decision:
    """Keep int8 when it loses at most ``max_drop`` accuracy points against fp32."""
    drop = fp32_accuracy - int8_accuracy
    numbers = (
        f"int8 test accuracy {int8_accuracy:.2f}% vs fp32 {fp32_accuracy:.2f}% "
        f"(drop {drop:+.2f} points, limit {max_drop:.2f})"
    )
    if drop <= max_drop + 1e-9:
        return Int8Decision(True, f"int8 kept: {numbers}")
    return Int8Decision(False, f"int8 rejected, fp32 served: {numbers}")
