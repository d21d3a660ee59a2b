"""PyTorch classifier -> one self-contained ONNX file that carries its own contract.

The file loads on every onnxruntime the Lambda bundle ships: the python3.11 runtime is limited to
onnxruntime 1.16.3, which accepts IR version <= 9 and opset <= 19, so we export opset 17 with the
TorchScript-based exporter (IR 8) and check both numbers before writing.
"""

from pathlib import Path

import onnx
import onnxruntime as ort
import torch
from torch import nn

from shared.cli import UsageError
from shared.model_contract import INPUT_NAME, OUTPUT_NAME, ModelContract
from trainer.atomic import atomic_path

OPSET = 17
MAX_IR_VERSION = 9
MAX_OPSET = 19


class ExportError(UsageError):
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
        if opset.domain in ("", "ai.onnx"):
            if opset.version > MAX_OPSET:
                raise ExportError(f"ONNX opset {opset.version} > {MAX_OPSET}")
        else:
            # onnxruntime 1.16.3 refuses to load a model that merely *imports* a domain version
            # newer than it knows (e.g. ai.onnx.ml 5), even if no node uses it.
            raise ExportError(
                f"ONNX model imports opset domain {opset.domain!r} v{opset.version}; "
                "only the default domain is allowed (see prune_opset_imports)"
            )


def prune_opset_imports(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop opset imports of domains no node uses (onnxruntime's optimizer adds a dozen)."""
    used = {node.domain or "" for node in proto.graph.node} | {""}
    keep = [op for op in proto.opset_import if (op.domain or "") in used]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    return proto


def load_session(source: bytes | str | Path) -> ort.InferenceSession:
    """An onnxruntime CPU session for a model file or serialized bytes; one-line error otherwise."""
    name = "the exported model" if isinstance(source, bytes) else str(source)
    try:
        return ort.InferenceSession(
            source if isinstance(source, bytes) else str(source),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several pybind types for bad files
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"onnxruntime cannot load {name}: {first_line[:300]}") from None


def save_onnx(proto: onnx.ModelProto, path: str | Path) -> Path:
    """Validate and write ``proto`` as one file (weights inside), atomically."""
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    return Path(path)


def export_onnx(model: nn.Module, contract: ModelContract, path: str | Path) -> Path:
    """Export ``model`` with ``contract`` in its metadata to ``path``; return the path."""
    return save_onnx(to_onnx_model(model, contract), path)
