"""What every section measures with: the two JPEGs, their API Gateway events, and the models.

Without ``--model`` the models are made here with the project's own exporter: a
``trainer.model.build_model("mobilenet_v2", 4, weights="none")`` (random weights, seed 0; speed does
not depend on the weights' values) -> ``trainer.onnx_export`` (fp32) -> ``trainer.quantize`` (int8,
calibrated on random images). The torch baseline gets the same weights under torchvision's names.
"""

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from scripts.benchlib.seedstyle import seed_state_dict
from shared import DEFAULT_LABELS, DEFAULT_SPEC, ModelContract
from tests.bundle_support import proxy_event
from trainer.checkpoint import BEST, load_checkpoint, model_from_checkpoint
from trainer.export import INT8_FILE, MODEL_FILE
from trainer.model import Classifier, build_model
from trainer.onnx_export import save_onnx, to_onnx_model
from trainer.parity import PreparedImages
from trainer.quantize import quantize_int8

# name -> (width, height): a small upload and a 12-megapixel phone photo.
IMAGES = {"300x300": (300, 300), "4032x3024": (4032, 3024)}
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Models:
    fp32: Path
    int8: Path
    seed_state: Path  # the same weights as a torchvision state dict, for the torch baseline
    origin: str  # said in the output: where the weights came from


@dataclass(frozen=True)
class Inputs:
    models: Models
    images: dict[str, Path]  # name -> JPEG file
    events: dict[str, Path]  # name -> API Gateway proxy event (JSON) posting that JPEG


def photo_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A photo-like JPEG: gradients, texture and sensor-like noise. The noise sets the compressed
    size, and the size sets the decode time even in draft mode (entropy decoding is not scaled):
    the 12 MP one is ~3.2 MB, a typical phone photo, under the API's 4.5 MB body limit."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(width, height) / 6
    base = np.stack(
        [
            80 + 120 * xx / width,
            100 + 100 * yy / height,
            128 + 60 * np.sin(xx / scale) * np.cos(yy / scale),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 8, base.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=JPEG_QUALITY
    )
    return buffer.getvalue()


def write_images(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """The JPEGs and, for each, the proxy event API Gateway sends for a raw ``image/jpeg`` POST."""
    folder.mkdir(parents=True, exist_ok=True)
    images, events = {}, {}
    for name, (width, height) in IMAGES.items():
        data = photo_jpeg(width, height)
        images[name] = folder / f"{name}.jpg"
        images[name].write_bytes(data)
        event = proxy_event("POST", "/classify", data, {"Content-Type": "image/jpeg"})
        events[name] = folder / f"{name}.event.json"
        events[name].write_text(json.dumps(event), encoding="utf-8")
    return images, events


def _random_calibration(count: int) -> PreparedImages:
    """Random uint8 crops: the int8 model's speed does not depend on its calibration ranges."""
    planes = np.random.default_rng(0).integers(
        0, 256, (count, *DEFAULT_SPEC.input_shape), dtype=np.uint8
    )
    paths = tuple(Path(f"random-{i}") for i in range(count))
    return PreparedImages(paths, np.zeros(count, np.int64), planes, DEFAULT_SPEC)


def _random_model() -> Classifier:
    torch.manual_seed(0)
    return build_model("mobilenet_v2", len(DEFAULT_LABELS), weights="none")


def _quantized(fp32: onnx.ModelProto, calibration: int, folder: Path) -> Path:
    """``fp32`` -> int8 with the project's quantizer, carrying the fp32 file's metadata over."""
    int8 = quantize_int8(fp32, _random_calibration(calibration))
    onnx.helper.set_model_props(int8, {p.key: p.value for p in fp32.metadata_props})
    return save_onnx(int8, folder / INT8_FILE)


def make_models(folder: Path, source: Path | None, calibration: int) -> Models:
    """Models from ``source`` (a run folder or an exported .onnx), or made afresh when None.

    A source without ``model.int8.onnx`` beside it is quantized here; without ``best.pt`` beside
    it, the torch baseline runs random weights (its speed is the same).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if source is None:
        model = _random_model()
        contract = ModelContract(
            DEFAULT_LABELS, DEFAULT_SPEC, {"model_version": "bench-random-weights"}
        )
        fp32_proto = to_onnx_model(model.eval(), contract)
        fp32 = save_onnx(fp32_proto, folder / MODEL_FILE)
        int8 = _quantized(fp32_proto, calibration, folder)
        origin = (
            "random weights (build_model('mobilenet_v2', 4, weights='none'), seed 0) exported by "
            "trainer.onnx_export + trainer.quantize: fine for speed, predictions meaningless"
        )
    else:
        run_dir = source if source.is_dir() else source.parent
        fp32 = source if source.is_file() else run_dir / MODEL_FILE
        if not fp32.is_file():
            raise FileNotFoundError(f"no {MODEL_FILE} in {run_dir}: run python -m trainer.export")
        best = run_dir / BEST
        model = model_from_checkpoint(load_checkpoint(best)) if best.is_file() else _random_model()
        int8 = run_dir / INT8_FILE
        if not int8.is_file():
            int8 = _quantized(onnx.load(str(fp32)), calibration, folder)
        origin = f"{fp32} (torch baseline: {best if best.is_file() else 'random weights'})"
    seed_state = folder / "seed_state.pt"
    torch.save(seed_state_dict(model), seed_state)
    return Models(fp32, int8, seed_state, origin)
