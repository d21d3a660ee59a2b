"""Fixtures shared across the suite: generated images and a real (tiny) exported model."""

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
    """A real MobileNetV2 (random init, 4 default labels) exported through trainer.onnx_export."""
    import torch

    from shared import DEFAULT_LABELS, DEFAULT_SPEC, ModelContract
    from trainer.model import build_model
    from trainer.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", len(DEFAULT_LABELS), weights="none").eval()
    info = {"model_version": "test-0", "run_id": "test", "created": "2026-01-01T00:00:00Z"}
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    return export_onnx(model, ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, info), path)
