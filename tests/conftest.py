"""Fixtures shared across the suite: generated images and a real (tiny) exported model."""

import os
from pathlib import Path

import pytest

from tests.imagegen import encode, synthetic_rgb
from tests.model_support import DETAILS, REJECT_ALL, tiny_model, with_rejection
from tests.robust_support import FIGURES


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


# --- models with a rejection rule: "unknown" answers ------------------------------------------
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The robustness tests' figures (cases, statuses, timings, memory), whichever worker ran them."""
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.when == "call"
        for key, value in report.user_properties
        if key == FIGURES
    ]
    if lines:
        terminalreporter.section("robustness figures")
        for line in lines:
            terminalreporter.write_line(f"[robustness] {line}")
