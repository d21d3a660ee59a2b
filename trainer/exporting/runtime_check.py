"""The Lambda runtime check: each exported file must answer under the onnxruntime and numpy the
bundle ships (``bundler/runtime.txt``) exactly as under the trainer's, or nothing is written.

The models run in ``.venv-deploy``'s Python seeing only the runtime packages
(``bundler.isolated``), exactly what Lambda will import.
"""

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bundler.isolated import ChildError, run_json
from bundler.probe import PROBE
from bundler.runtime import RuntimeSetupError, deploy_interpreter, deploy_target
from shared.cli import one_line
from shared.model_contract import INPUT_NAME
from trainer.exporting.graph import ExportError, load_session
from trainer.exporting.parity import MAX_PROB_DIFF, ParityError


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
