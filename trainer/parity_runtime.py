"""Run exported models under the onnxruntime the Lambda bundle ships, and compare with this one.

The dev venv has a current onnxruntime; the python3.11 Lambda runtime gets onnxruntime 1.16.3 with
numpy 1.26 (``.runtimes/py311``, made by ``scripts/setup``). They cannot share a process, so the old
one runs in a child interpreter started with ``-I`` whose ``sys.path`` holds the runtime folder and
the standard library only: exactly the packages Lambda will have. Inputs and outputs travel as
``.npy``/``.npz`` files (no pickles).
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.model_contract import INPUT_NAME
from trainer.onnx_export import ExportError, load_session
from trainer.parity import ParityError

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = ROOT / ".runtimes" / f"py{sys.version_info.major}{sys.version_info.minor}"
MAX_PROB_DIFF = 1e-4

# Runs in the child: argv = runtime_dir, inputs.npy, outputs.npz, model paths...
_CHILD = """
import json, sys
runtime, inputs, outputs, *models = sys.argv[1:]
sys.path[:] = [runtime] + [p for p in sys.path if "site-packages" not in p
                           and "dist-packages" not in p]
import numpy as np
import onnxruntime as ort
x = np.load(inputs)
results = {}
for i, path in enumerate(models):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    results[f"m{i}"] = session.run(None, {session.get_inputs()[0].name: x})[0]
np.savez(outputs, **results)
print(json.dumps({"onnxruntime": ort.__version__, "numpy": np.__version__,
                  "origin": ort.__file__}))
"""


class RuntimeMissingError(ExportError):
    """The Lambda runtime packages are not installed in ``.runtimes/``."""


class RuntimeMismatchError(ParityError):
    """A model answers differently under the Lambda runtime's onnxruntime."""


@dataclass(frozen=True)
class RuntimeRun:
    onnxruntime: str
    numpy: str
    origin: str
    outputs: list[np.ndarray]


def run_in_lambda_runtime(
    models: list[Path], inputs: np.ndarray, runtime_dir: Path = RUNTIME_DIR
) -> RuntimeRun:
    """Outputs of each model on ``inputs`` under the runtime folder's onnxruntime."""
    if not (runtime_dir / "onnxruntime").is_dir():
        raise RuntimeMissingError(
            f"{runtime_dir} has no onnxruntime: run scripts/setup to fetch the Lambda runtime"
        )
    with tempfile.TemporaryDirectory(prefix="skyclass-rt-") as tmp:
        x_path, out_path = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
        np.save(x_path, np.ascontiguousarray(inputs, dtype=np.float32))
        cmd = [sys.executable, "-I", "-c", _CHILD, str(runtime_dir), str(x_path), str(out_path)]
        proc = subprocess.run(
            [*cmd, *map(str, models)], capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ExportError(f"the Lambda runtime ({runtime_dir.name}) failed: {last[:300]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(out_path) as data:
            outputs = [data[f"m{i}"] for i in range(len(models))]
    return RuntimeRun(info["onnxruntime"], info["numpy"], info["origin"], outputs)


def check_across_runtimes(
    models: list[Path], inputs: np.ndarray, runtime_dir: Path = RUNTIME_DIR
) -> str:
    """Each model must give the same answers here and under the Lambda runtime; return a summary."""
    run = run_in_lambda_runtime(models, inputs, runtime_dir)
    worst = 0.0
    for path, theirs in zip(models, run.outputs, strict=True):
        ours = load_session(path).run(None, {INPUT_NAME: inputs})[0]
        diff = float(np.max(np.abs(ours - theirs)))
        worst = max(worst, diff)
        flips = int(np.sum(ours.argmax(1) != theirs.argmax(1)))
        if diff > MAX_PROB_DIFF or flips:
            raise RuntimeMismatchError(
                f"{path.name} answers differently under onnxruntime {run.onnxruntime} than under "
                f"{ort.__version__}: max probability difference {diff:.2e}, "
                f"top-1 differs on {flips} of {len(inputs)} images"
            )
    return (
        f"same answers under onnxruntime {run.onnxruntime} (numpy {run.numpy}, "
        f"{runtime_dir.name}) on {len(inputs)} images: max difference {worst:.1e}"
    )
