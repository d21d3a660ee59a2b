"""Fixtures shared across the suite: generated images and a real (tiny) exported model."""

import os
from pathlib import Path

import pytest

from tests.imagegen import encode, synthetic_rgb


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return encode(synthetic_rgb(320, 240, seed=1), "JPEG", quality=90)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return encode(synthetic_rgb(200, 300, seed=2), "PNG")


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MobileNetV2 (random init, 4 default labels) exported through trainer.exporting.graph."""
    import torch

    from shared import DEFAULT_LABELS, DEFAULT_SPEC, ModelContract
    from trainer.exporting.graph import save_onnx, to_onnx_model
    from trainer.model.classifier import build_model

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", len(DEFAULT_LABELS), weights="none").eval()
    info = {"model_version": "test-0", "run_id": "test", "created": "2026-01-01T00:00:00Z"}
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    return save_onnx(to_onnx_model(model, ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, info)), path)


# --- models with a rejection rule: "unknown" answers -------------------------------------------
# Rules in the metadata as trainer.export writes them (shared.model_contract.Rejection).
# Above every probability there is: every image is "unknown"; 0: every image is one of the classes.
REJECT_ALL = 1.01
DETAILS = {"auroc": 0.97, "val_in_class": 120, "val_negatives": 30, "fpr": 0.09}


@pytest.fixture(scope="session")
def white_png() -> bytes:
    """All white: the ``known_score_model`` finds it one of its classes."""
    import numpy as np

    return encode(np.full((96, 128, 3), 255, np.uint8), "PNG")


@pytest.fixture(scope="session")
def black_png() -> bytes:
    """All black: the ``known_score_model`` finds it none of its classes."""
    import numpy as np

    return encode(np.zeros((96, 128, 3), np.uint8), "PNG")


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


@pytest.fixture(scope="session")
def rejecting_model(exported_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``exported_model`` with a max_probability rule no image passes: everything is unknown."""
    from shared.model_contract import Rejection

    rule = Rejection("max_probability", "max_probability", REJECT_ALL, 0.95, DETAILS)
    path = tmp_path_factory.mktemp("rejecting-model") / "model.onnx"
    return with_rejection(exported_model, path, rule, "test-reject")


@pytest.fixture(scope="session")
def accepting_model(exported_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``exported_model`` with a max_probability rule at 0: every image is one of the classes."""
    from shared.model_contract import Rejection

    rule = Rejection("max_probability", "max_probability", 0.0, 1.0, {})
    path = tmp_path_factory.mktemp("accepting-model") / "model.onnx"
    return with_rejection(exported_model, path, rule, "test-accept")


def tiny_model(
    path: Path, labels: tuple[str, ...], rejection: object, version: str, known_score: bool
) -> Path:
    """A real ONNX model built with ``onnx.helper``: ``probabilities`` = softmax of a random
    linear map of the input (it moves with the pixels) and, with ``known_score``, a second output
    ``known_score`` [N] = the mean of the normalised input (a white image about +2.4, a black one
    about -2), with ``rejection`` in its metadata."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shared import DEFAULT_SPEC, ModelContract

    features = int(np.prod(DEFAULT_SPEC.input_shape))
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
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["N", *DEFAULT_SPEC.input_shape]
            )
        ],
        outputs,
        [numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = {"model_version": version, "run_id": version, "created": "2026-01-01T00:00:00Z"}
    contract = ModelContract(labels, DEFAULT_SPEC, info, rejection=rejection)
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def known_score_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 labels and a real ``known_score`` output, threshold 0: white images are known, black ones
    unknown, so one batch can hold both answers."""
    from shared import DEFAULT_LABELS
    from shared.model_contract import Rejection

    rule = Rejection("background_class", "known_score", 0.0, 0.95, {"auroc": 0.99})
    path = tmp_path_factory.mktemp("known-score-model") / "model.onnx"
    return tiny_model(path, DEFAULT_LABELS, rule, "score-1", known_score=True)


@pytest.fixture(scope="session")
def three_label_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 labels, a max_probability rule no image passes: every image is unknown."""
    from shared.model_contract import Rejection

    rule = Rejection("max_probability", "max_probability", REJECT_ALL, 0.95, {})
    path = tmp_path_factory.mktemp("three-label-model") / "model.onnx"
    return tiny_model(path, ("Cats", "Dogs", "Kites"), rule, "three-1", known_score=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """In CI (SKYCLASS_CI) a skipped test is a failed one: CI installs everything the suite
    needs, so a skip there means a broken set-up, never a pass."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("SKYCLASS_CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where nothing may be missing: {reason}"


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init mobilenet_v3_small state dict: ``--weights`` for tiny solved-head runs."""
    from tests.trainer_support import save_random_backbone

    return save_random_backbone(tmp_path_factory.mktemp("weights") / "random.pth")
