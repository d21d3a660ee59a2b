"""Run one measurement in a fresh interpreter and hand its JSON result back to the parent.

    python -m scripts.benchlib.worker JOB ARGS_JSON RESULT_PATH

A job is a function taking keyword arguments and returning JSON-ready data. Its module is imported
only in the child, so a child measuring onnxruntime never imports torch and the other way round.
"""

import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

JOBS = {
    "handler_warm": "scripts.benchlib.serving:handler_warm",
    "torch_warm": "scripts.benchlib.serving:torch_warm",
    "handler_memory": "scripts.benchlib.serving:handler_memory",
    "ort_model": "scripts.benchlib.model_only:ort_model",
    "torch_model": "scripts.benchlib.model_only:torch_model",
}


class WorkerError(RuntimeError):
    """A child measurement failed; the message carries the end of its stderr."""


def run_job(job: str, timeout: float = 1800, **kwargs: Any) -> Any:
    """Run ``job`` in a child interpreter (cwd: the repository) and return its result."""
    with tempfile.TemporaryDirectory(prefix="skyclass-bench-") as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "scripts.benchlib.worker",
            job,
            json.dumps(kwargs),
            str(result),
        ]
        completed = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        if completed.returncode != 0 or not result.is_file():
            tail = completed.stderr.strip().splitlines()[-12:]
            raise WorkerError(f"{job} exited {completed.returncode}: " + "\n".join(tail))
        return json.loads(result.read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    job, args, out = argv
    module_name, _, function = JOBS[job].partition(":")
    fn = getattr(importlib.import_module(module_name), function)
    Path(out).write_text(json.dumps(fn(**json.loads(args))), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
