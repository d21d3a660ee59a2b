"""PyTorch classifier -> one self-contained ONNX file that carries its own contract.

The file loads on every onnxruntime the Lambda bundle ships: the python3.11 runtime is limited to
onnxruntime 1.16.3, which accepts IR version <= 9 and opset <= 19, so we export opset 17 with the
TorchScript-based exporter (IR 8) and check both numbers before writing.
"""

from pathlib import Path

import onnx
import torch
from torch import nn

from shared.model_contract import INPUT_NAME, OUTPUT_NAME, ModelContract
from trainer.atomic import atomic_path

OPSET = 17
MAX_IR_VERSION = 9
MAX_OPSET = 19


class ExportError(RuntimeError):
    """The model could not be exported into a file the API can serve."""


class WithSoftmax(nn.Module):
    """Logits model -> probabilities, so the served file's single output is what clients see."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def to_onnx_model(model: nn.Module, contract: ModelContract) -> onnx.ModelProto:
    """Trace ``model`` (returning logits) in eval mode; return the ONNX proto with metadata."""
    import io

    wrapped = WithSoftmax(model).eval()
    example = torch.zeros((2, *contract.spec.input_shape), dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    check_compatible(proto)
    onnx.helper.set_model_props(proto, contract.to_metadata())
    proto.doc_string = "skyclass image classifier; output: class probabilities (softmax)"
    return proto


def check_compatible(proto: onnx.ModelProto) -> None:
    """Refuse a model that onnxruntime 1.16.3 (python3.11 Lambda runtime) could not load."""
    if proto.ir_version > MAX_IR_VERSION:
        raise ExportError(f"ONNX IR version {proto.ir_version} > {MAX_IR_VERSION}")
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > MAX_OPSET:
            raise ExportError(f"ONNX opset {opset.version} > {MAX_OPSET}")


def save_onnx(proto: onnx.ModelProto, path: str | Path) -> Path:
    """Validate and write ``proto`` as one file (weights inside), atomically."""
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    return Path(path)


def export_onnx(model: nn.Module, contract: ModelContract, path: str | Path) -> Path:
    """Export ``model`` with ``contract`` in its metadata to ``path``; return the path."""
    return save_onnx(to_onnx_model(model, contract), path)
