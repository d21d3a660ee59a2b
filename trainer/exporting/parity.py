"""Parity: the exported ONNX model must answer like the PyTorch model it came from, and the same
under the onnxruntime and numpy the Lambda bundle ships (``bundler/runtime.txt``) as under the
trainer's. The latter run in ``.venv-deploy``'s Python seeing only the runtime packages
(``bundler.isolated``), exactly what Lambda will import.

Images go through exactly what the API does (``shared.decode`` then the numpy preprocessing of
``shared.preprocess``); the same float32 tensors are fed to the PyTorch model in eval mode and to
onnxruntime. Every image must get the same top-1 class and no probability may differ by more than
:data:`MAX_PROB_DIFF`; otherwise :class:`ParityError` says by how much and on which images.
"""

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from tqdm import tqdm

from bundler.isolated import ChildError, run_json
from bundler.probe import PROBE
from bundler.runtime import RuntimeSetupError, deploy_interpreter, deploy_target
from shared import PreprocessSpec
from shared.cli import CheckError, one_line
from shared.decode import DecodeError, decode
from shared.model_contract import INPUT_NAME
from shared.preprocess import normalize, resize_crop_planar
from trainer.common.progress import hidden
from trainer.exporting.graph import ExportError, WithSoftmax, load_session

MAX_PROB_DIFF = 1e-4
BATCH = 16


class ParityError(CheckError, ExportError):
    """The ONNX model does not reproduce the PyTorch model."""


@dataclass(frozen=True)
class PreparedImages:
    """Decoded, resized and cropped images kept as uint8 (150 KB each rather than 600 KB).

    ``normalize`` on these planes is exactly ``shared.preprocess`` on the decoded image, since
    ``preprocess(rgb) == normalize(resize_crop_planar(rgb))`` and the planes hold exact integers.
    """

    paths: tuple[Path, ...]
    labels: np.ndarray  # int64 (N,)
    planes: np.ndarray  # uint8 (N, 3, crop, crop)
    spec: PreprocessSpec

    def __len__(self) -> int:
        return len(self.paths)

    def tensor(self, start: int, stop: int) -> np.ndarray:
        """float32 ``(n, 3, crop, crop)`` network input for images ``start..stop``."""
        return np.concatenate([normalize(p, self.spec) for p in self.planes[start:stop]])

    def batches(self, size: int = BATCH) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, len(self), size):
            yield start, self.tensor(start, start + size)


def prepare_images(
    items: Sequence[tuple[Path, int]], spec: PreprocessSpec, *, desc: str = "decode"
) -> PreparedImages:
    """Decode + preprocess ``(path, label index)`` items; a bad file is a one-line ExportError."""
    planes = np.empty((len(items), *spec.input_shape), dtype=np.uint8)
    for i, (path, _) in enumerate(
        tqdm(items, desc=desc, unit="img", leave=False, disable=hidden())
    ):
        try:
            rgb = decode(Path(path).read_bytes(), min_short_side=spec.resize)
        except OSError as exc:
            raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
        except DecodeError as exc:
            raise ExportError(f"cannot decode {path}: {exc.message}") from None
        planes[i] = resize_crop_planar(rgb, spec)
    labels = np.asarray([label for _, label in items], dtype=np.int64)
    return PreparedImages(tuple(Path(p) for p, _ in items), labels, planes, spec)


def onnx_outputs(
    session: ort.InferenceSession, images: PreparedImages, *, desc: str = "onnx"
) -> list[np.ndarray]:
    """Every output of ``session`` on every prepared image: float32 ``(N, classes)``
    probabilities, then ``(N,)`` known scores when the model has them."""
    out: list[list[np.ndarray]] = []
    with tqdm(total=len(images), desc=desc, unit="img", leave=False, disable=hidden()) as bar:
        for _, x in images.batches():
            out.append(session.run(None, {INPUT_NAME: x}))
            bar.update(len(x))
    return [np.concatenate([b[i] for b in out]).astype(np.float32) for i in range(len(out[0]))]


@dataclass(frozen=True)
class ParityReport:
    images: int
    max_prob_diff: float
    top1_mismatches: tuple[Path, ...]
    probabilities: np.ndarray  # the exported model's answers (same top-1 as PyTorch if passed)
    known: np.ndarray | None = None  # its known_score output, when the model has one

    @property
    def passed(self) -> bool:
        return not self.top1_mismatches and self.max_prob_diff <= MAX_PROB_DIFF

    def summary(self) -> str:
        return (
            f"{self.images} val and training images, top-1 mismatches {len(self.top1_mismatches)}, "
            f"max probability difference {self.max_prob_diff:.2e} (limit {MAX_PROB_DIFF:.0e})"
        )


def compare(
    model: nn.Module,
    session: ort.InferenceSession,
    images: PreparedImages,
    temperature: float = 1.0,
    background: bool = False,
) -> ParityReport:
    """Run both models on the same tensors; report (never raise) how far apart they are.

    ``model`` returns logits; the reference is the very wrapper the export traced
    (``trainer.exporting.graph.WithSoftmax``: temperature, softmax, and the ``known_score`` of a
    model with a background class), so every output the file has is compared.
    """
    reference_model = WithSoftmax(model.eval(), temperature, background).eval()
    torch_out, onnx_out = [], []
    with tqdm(total=len(images), desc="parity", unit="img", leave=False, disable=hidden()) as bar:
        for _, x in images.batches():
            with torch.inference_mode():
                out = reference_model(torch.from_numpy(x))
            outs = out if isinstance(out, tuple) else (out,)
            torch_out.append([o.numpy().reshape(len(x), -1) for o in outs])
            onnx_out.append([o.reshape(len(x), -1) for o in session.run(None, {INPUT_NAME: x})])
            bar.update(len(x))
    reference = [np.concatenate([b[i] for b in torch_out]) for i in range(len(torch_out[0]))]
    exported = [
        np.concatenate([b[i] for b in onnx_out]).astype(np.float32) for i in range(len(onnx_out[0]))
    ]
    shapes = ([r.shape for r in reference], [e.shape for e in exported])
    if shapes[0] != shapes[1]:
        raise ParityError(f"ONNX output shapes {shapes[1]} != PyTorch {shapes[0]}")
    diff = max(
        (float(np.max(np.abs(r - e))) for r, e in zip(reference, exported, strict=True)),
        default=0.0,
    )
    if not all(np.isfinite(e).all() for e in exported):
        diff = float("inf")
    mismatched = np.flatnonzero(reference[0].argmax(axis=1) != exported[0].argmax(axis=1))
    return ParityReport(
        images=len(images),
        max_prob_diff=diff,
        top1_mismatches=tuple(images.paths[i] for i in mismatched),
        probabilities=exported[0],
        known=exported[1].reshape(-1) if len(exported) > 1 else None,
    )


def check_parity(
    model: nn.Module,
    session: ort.InferenceSession,
    images: PreparedImages,
    temperature: float = 1.0,
    background: bool = False,
) -> ParityReport:
    """:func:`compare`, raising :class:`ParityError` with the numbers unless it passed."""
    if len(images) == 0:
        raise ParityError("parity gate: no val or training images to compare on")
    report = compare(model, session, images, temperature, background)
    if not report.passed:
        shown = ", ".join(p.name for p in report.top1_mismatches[:5])
        more = f" (e.g. {shown})" if shown else ""
        raise ParityError(f"parity gate failed: {report.summary()}{more}")
    return report


class RuntimeMismatchError(ParityError):
    """A model answers differently under the onnxruntime the Lambda bundle ships."""


@dataclass(frozen=True)
class RuntimeRun:
    onnxruntime: str
    numpy: str
    origin: str
    outputs: list[np.ndarray]


def run_in_lambda_runtime(models: Sequence[Path], inputs: np.ndarray) -> RuntimeRun:
    """Outputs of each model on ``inputs`` under the deploy runtime's own onnxruntime and numpy.

    They run in ``.venv-deploy``'s Python seeing only the runtime packages (``bundler.isolated``),
    exactly what Lambda will import; raises ``bundler.runtime.RuntimeSetupError`` without them.
    """
    target = deploy_target()
    folder = target.packages_dir
    if not (folder / "onnxruntime").is_dir():
        raise RuntimeSetupError(f"{folder} has no onnxruntime: run scripts/setup-deploy")
    with tempfile.TemporaryDirectory(prefix="skyclass-rt-") as tmp:
        x_path, out_path = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
        np.save(x_path, np.ascontiguousarray(inputs, dtype=np.float32))
        job = {"inputs": str(x_path), "outputs": str(out_path), "paths": [str(m) for m in models]}
        try:
            answer = run_json(deploy_interpreter(), PROBE, {"models": job}, folders=[folder])
        except ChildError as exc:
            message = one_line(exc)[-300:]
            raise ExportError(f"the Lambda runtime ({target.tag}) failed: {message}") from None
        with np.load(out_path) as data:
            outputs = [data[f"m{i}"] for i in range(len(models))]
    info = answer["models"]
    return RuntimeRun(info["onnxruntime"], info["numpy"], info["origin"], outputs)


def check_lambda_runtime(models: Sequence[Path], inputs: np.ndarray) -> str:
    """Each model must answer here as under the Lambda runtime; return a one-line summary."""
    run = run_in_lambda_runtime(models, inputs)
    worst = 0.0
    for path, theirs in zip(models, run.outputs, strict=True):
        ours = load_session(path).run(None, {INPUT_NAME: inputs})[0]
        diff = float(np.max(np.abs(ours - theirs)))
        worst = max(worst, diff)
        flips = int(np.sum(ours.argmax(1) != theirs.argmax(1)))
        if diff > MAX_PROB_DIFF or flips:
            raise RuntimeMismatchError(
                f"{Path(path).name} answers differently under onnxruntime {run.onnxruntime} than "
                f"under {ort.__version__}: max probability difference {diff:.2e}, "
                f"top-1 differs on {flips} of {len(inputs)} images"
            )
    return (
        f"same answers under the Lambda runtime's onnxruntime {run.onnxruntime} "
        f"(numpy {run.numpy}) on {len(inputs)} images: max difference {worst:.1e}"
    )


def runtime_check(files: Mapping[str, bytes], x: np.ndarray) -> str:
    """Run the exact bytes about to be written under the Lambda runtime; a mismatch is fatal,
    a machine without the runtime says so in the summary."""
    with tempfile.TemporaryDirectory(prefix="skyclass-export-") as tmp:
        paths = []
        for name, data in files.items():
            paths.append(Path(tmp) / name)
            paths[-1].write_bytes(data)
        try:
            return check_lambda_runtime(paths, x)
        except RuntimeSetupError as exc:
            return f"not checked ({exc})"
