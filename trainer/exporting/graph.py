"""The exported graph: PyTorch classifier -> one self-contained ONNX file that carries its contract.

The graph ends in ``softmax(logits / T)`` with the fitted temperature ``T``, so the file's single
output is the calibrated probabilities clients see. It is exported at opset 17 with the
TorchScript-based exporter (IR 8), inside the limits the Lambda runtime's onnxruntime loads
(``bundler.runtime``), which are checked before anything is written.
"""

from pathlib import Path

import onnx
import onnxruntime as ort
import torch
from torch import nn

from bundler.runtime import MAX_IR_VERSION, MAX_OPSET
from shared.cli import UsageError
from shared.model_contract import INPUT_NAME, KNOWN_SCORE_OUTPUT, OUTPUT_NAME, ModelContract
from trainer.common.files import atomic_path

OPSET = 17


class ExportError(UsageError):
    """The model could not be exported into a file the API can serve."""


class WithSoftmax(nn.Module):
    """Logits model -> calibrated class probabilities, the served file's first output.

    A second output ``known_score`` says how much the image is one of the classes: from the
    model's own known-score module (the solved head's rule), or, for a head with a background
    output (``background``, negatives in epochs), ``1 - p(background)`` over all outputs while the
    probabilities are over the classes alone.
    """

    def __init__(self, model: nn.Module, temperature: float = 1.0, background: bool = False):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)
        self.background = background

    @property
    def outputs(self) -> list[str]:
        known = self.background or getattr(self.model, "known_score", None) is not None
        return [OUTPUT_NAME, KNOWN_SCORE_OUTPUT] if known else [OUTPUT_NAME]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.model.served_features(x)
        logits = self.model.head(features)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.model.known_score is not None:
            known = self.model.known_score(features, logits.argmax(dim=1))
            return torch.softmax(logits, dim=1), known
        if not self.background:
            return torch.softmax(logits, dim=1)
        known = 1.0 - torch.softmax(logits, dim=1)[:, -1]
        return torch.softmax(logits[:, :-1], dim=1), known


def to_onnx_model(
    model: nn.Module, contract: ModelContract, temperature: float = 1.0, background: bool = False
) -> onnx.ModelProto:
    """Trace ``model`` (returning logits) in eval mode; return the ONNX proto with metadata."""
    import io

    wrapped = WithSoftmax(model, temperature, background).eval()
    outputs = wrapped.outputs
    example = torch.zeros((2, *contract.spec.input_shape), dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
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
    """Refuse a model the Lambda runtime's onnxruntime might not load (``bundler.runtime``)."""
    if proto.ir_version > MAX_IR_VERSION:
        raise ExportError(f"ONNX IR version {proto.ir_version} > {MAX_IR_VERSION}")
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            if opset.version > MAX_OPSET:
                raise ExportError(f"ONNX opset {opset.version} > {MAX_OPSET}")
        else:
            # An older onnxruntime refuses a model that merely *imports* a domain version newer
            # than it knows (e.g. ai.onnx.ml 5), even if no node uses it; the graph needs none.
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
