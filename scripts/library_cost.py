"""What a library would cost the Lambda bundle: zipped size and cold-start time, measured.

    .venv/bin/python -m scripts.library_cost                 # python-multipart and Powertools
    .venv/bin/python -m scripts.library_cost --repeats 41

Builds the real bundle (``bundler``, around a tiny ONNX model: the model does not change either
figure), then for each candidate installs its wheels for the bundle's runtime, strips them with
the bundler's rules and compiles their bytecode with the runtime's Python, as a build would:

- **zipped**: the deployment zip with the library's files added, as chalice deflates them, minus
  the zip without them;
- **cold start**: fresh isolated interpreters (``bundler.isolated``, the unzipped bundle only, as
  Lambda sees ``/var/task``) that ``import app`` and answer one proxy event, with and without the
  candidate's own start-up code run first (its imports and the objects the app would make), in
  turn; the difference of the medians. Load on the machine inflates both sides alike.

The figures decide what docs/deploy.md says under "Libraries considered".
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bundler.build import build
from bundler.probe import proxy_event
from bundler.runtime import deploy_interpreter, deploy_target
from bundler.strip import strip
from shared.paths import REPO

PROBE = REPO / "bundler" / "probe.py"
MIB = 1024**2


@dataclass(frozen=True)
class Candidate:
    name: str
    requirements: tuple[str, ...]  # pinned, with the dependencies a session would need
    start_up: str  # what the app would run at import to use it


CANDIDATES = (
    Candidate(
        "python-multipart",
        ("python-multipart==0.0.34",),
        "from python_multipart.multipart import MultipartParser",
    ),
    Candidate(
        "Powertools for AWS Lambda: Logger + Metrics",
        ("aws-lambda-powertools==3.37.0", "jmespath==1.1.0", "typing-extensions==4.16.0"),
        "from aws_lambda_powertools import Logger, Metrics\n"
        "Logger(service='skyclass'); Metrics(namespace='skyclass', service='skyclass')",
    ),
)

# Runs in the isolated bundle interpreter: the candidate's start-up (or nothing), then the app's
# cold start to a first answer. Standard library only before that, like bundler/probe.py.
_COLD = """
import json, sys, time
started = time.perf_counter()
exec(sys.argv[1])
import app
from probe import LambdaContext
event = json.loads(sys.stdin.read())
response = app.app(event, LambdaContext())
assert response["statusCode"] == 200, response
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def tiny_model(path: Path) -> Path:
    """A contract-abiding ONNX model: softmax of a linear map of the input."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shared import DEFAULT_LABELS, DEFAULT_SPEC, ModelContract

    features = int(np.prod(DEFAULT_SPEC.input_shape))
    weights = np.random.default_rng(0).normal(0, 0.004, (features, len(DEFAULT_LABELS)))
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["N", *DEFAULT_SPEC.input_shape]
            )
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    contract = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, {"model_version": "library-cost"})
    helper.set_model_props(model, contract.to_metadata())
    onnx.save(model, str(path))
    return path


def install(candidate: Candidate, python: str, machine: str, into: Path) -> Path:
    """The candidate's wheels for the runtime, stripped and compiled as the bundler would."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(into), "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", python, "--platform", f"manylinux2014_{machine}",
           *candidate.requirements]  # fmt: skip
    subprocess.run(cmd, check=True)
    strip(into)
    subprocess.run(
        [str(deploy_interpreter()), "-m", "compileall", "-q",
         "--invalidation-mode", "unchecked-hash", str(into)],
        check=True,
    )  # fmt: skip
    return into


def zipped_delta(deployment_zip: Path, library: Path, work: Path) -> tuple[int, int]:
    """(bytes the library adds to the zip, its unzipped bytes)."""
    combined = work / "with-library.zip"
    shutil.copyfile(deployment_zip, combined)
    unzipped = 0
    with zipfile.ZipFile(combined, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(library.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(library).as_posix())
                unzipped += path.stat().st_size
    return combined.stat().st_size - deployment_zip.stat().st_size, unzipped


def cold_starts(task: Path, library: Path | None, start_up: str, repeats: int) -> list[float]:
    script = task.parent / "cold.py"
    script.write_text(_COLD, encoding="utf-8")
    folders = [task, REPO / "bundler"] + ([library] if library else [])
    event = proxy_event("POST", "/classify", _jpeg(), {"Content-Type": "image/jpeg"})
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", "/usr/bin")}
    times = []
    for _ in range(repeats):
        answer = _run(script, task, folders, env, event, start_up)
        times.append(answer["ms"])
    return times


def _run(script: Path, task: Path, folders: list, env: dict, event: dict, code: str) -> dict:
    import json

    proc = subprocess.run(
        [str(deploy_interpreter()), "-P", "-S", "-s", str(script), code],
        input=json.dumps(event), capture_output=True, text=True, cwd=task, check=False,
        env={**env, "PYTHONPATH": os.pathsep.join(map(str, folders))},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _jpeg() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="cold starts per side")
    args = parser.parse_args(argv)
    target = deploy_target()
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="skyclass-library-cost-") as tmp:
        work = Path(tmp)
        bundle = build(target, model=tiny_model(work / "model.onnx"), out=work / "bundle")
        task = work / "task"
        with zipfile.ZipFile(bundle.deployment_zip) as archive:
            archive.extractall(task)
        print(f"bundle: {bundle.zip_size / MIB:.2f} MiB zipped ({target.describe()})")
        for number, candidate in enumerate(CANDIDATES):
            library = install(candidate, target.python, target.machine, work / f"lib{number}")
            added, unzipped = zipped_delta(bundle.deployment_zip, library, work)
            without, with_ = [], []
            for _ in range(args.repeats):  # in turn, so load changes hit both sides
                without += cold_starts(task, library, "pass", 1)
                with_ += cold_starts(task, library, candidate.start_up, 1)
            cost = statistics.median(with_) - statistics.median(without)
            print(
                f"{candidate.name} ({', '.join(candidate.requirements)}): "
                f"+{added / MIB:.3f} MiB zipped (+{unzipped / MIB:.2f} MiB unzipped); cold start "
                f"{statistics.median(without):.1f} -> {statistics.median(with_):.1f} ms "
                f"(+{cost:.1f} ms, medians of {args.repeats})"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
