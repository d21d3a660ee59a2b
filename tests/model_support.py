"""Models the API tests serve, built for the test: the suite's export with a rejection rule
written into its metadata, and tiny real ONNX graphs. (No tests here; the fixtures that use these
are in conftest.py.)"""

from pathlib import Path

# Rules in the metadata as trainer.export writes them (shared.model_contract.Rejection).
# Above every probability there is: every image is "unknown"; 0: every image is one of the classes.
REJECT_ALL = 1.01
DETAILS = {"auroc": 0.97, "val_in_class": 120, "val_negatives": 30, "fpr": 0.09}


def with_rejection(source: Path, path: Path, rejection: object, version: str) -> Path:
    """The exported model at ``source`` written again at ``path`` with ``rejection`` (a
    :class:`shared.model_contract.Rejection`) in its contract, as a current export carries it."""
    import dataclasses

    import onnx

    from shared import ModelContract

    proto = onnx.load(str(source))
    contract = ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props})
    info = {**contract.info, "model_version": version}
    contract = dataclasses.replace(contract, info=info, rejection=rejection)
    onnx.helper.set_model_props(proto, contract.to_metadata())
    onnx.save(proto, str(path))
    return path


def tiny_model(
    path: Path,
    labels: tuple[str, ...],
    rejection: object,
    version: str,
    known_score: bool,
    spec: object = None,
) -> Path:
    """A real ONNX model built with ``onnx.helper``: ``probabilities`` = softmax of a random
    linear map of the input (it moves with the pixels) and, with ``known_score``, a second output
    ``known_score`` [N] = the mean of the normalised input (a white image about +2.4, a black one
    about -2), with ``rejection`` in its metadata."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shared import DEFAULT_SPEC, ModelContract

    spec = spec or DEFAULT_SPEC
    features = int(np.prod(spec.input_shape))
    weights = np.random.default_rng(1).normal(0, 0.004, (features, len(labels)))
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    outputs = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(labels)])
    ]
    if known_score:
        nodes.append(
            helper.make_node("ReduceMean", ["flat"], ["known_score"], axes=[1], keepdims=0)
        )
        outputs.append(helper.make_tensor_value_info("known_score", TensorProto.FLOAT, ["N"]))
    graph = helper.make_graph(
        nodes,
        "tiny-model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *spec.input_shape])],
        outputs,
        [numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = {"model_version": version, "run_id": version, "created": "2026-01-01T00:00:00Z"}
    contract = ModelContract(labels, spec, info, rejection=rejection)
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
