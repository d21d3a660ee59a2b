"""Section 1, cold start: a fresh interpreter that imports, loads the model and answers once.

The parent starts ``python scripts/benchlib/cold.py ours|torch ...`` and measures from just before
the spawn to the moment the child has its answer (the child reports ``time.perf_counter()`` then:
CLOCK_MONOTONIC, the same clock in every process on Linux), so interpreter start-up is counted on
both sides and interpreter tear-down on neither, as in a Lambda cold start. Runs alternate
ours / torch so that a change in machine load hits both.

This file is also the child script: its top level imports only the standard library.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def ours(model: str, event_path: str) -> dict[str, Any]:
    """Lambda's cold path: import the handler module, then one proxy event (loads the model)."""
    start = time.perf_counter()
    os.environ["SKYCLASS_MODEL_PATH"] = model
    # What /var/task holds on Lambda: app.py + chalicelib/, and shared/ (vendored there).
    sys.path[0:1] = [str(ROOT / "classify_api"), str(ROOT)]
    import app  # timed: the import is part of the cold start
    from bundler.probe import LambdaContext

    imported = time.perf_counter()
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    response = app.app(event, LambdaContext())
    ready = time.perf_counter()
    body = json.loads(response["body"])
    return {
        "status": response["statusCode"],
        "label": body.get("label"),
        "import_ms": (imported - start) * 1000,
        "first_request_ms": (ready - imported) * 1000,
        "ready": ready,
    }


def seed(state: str, image: str) -> dict[str, Any]:
    """The seed's cold path: import torch + torchvision, build, load the state dict, predict."""
    start = time.perf_counter()
    sys.path[0] = str(ROOT)
    import torch  # noqa: F401 - timed: the import is part of the cold start

    from scripts.benchlib.seedstyle import load_seed_model, predict, seed_transform
    from shared.labels import DEFAULT_LABELS

    imported = time.perf_counter()
    model, transform = load_seed_model(state), seed_transform()
    loaded = time.perf_counter()
    probabilities = predict(model, transform, Path(image).read_bytes())
    ready = time.perf_counter()
    return {
        "status": 200,
        "label": DEFAULT_LABELS[int(probabilities.argmax())],
        "import_ms": (imported - start) * 1000,
        "load_ms": (loaded - imported) * 1000,
        "first_request_ms": (ready - loaded) * 1000,
        "ready": ready,
    }


def _child_main(argv: list[str]) -> None:
    kind, *args = argv
    result = {"ours": ours, "seed": seed}[kind](*args)
    print(json.dumps(result), flush=True)


def run_once(kind: str, *args: str) -> dict[str, Any]:
    """One cold start in a fresh interpreter; adds ``to_response_ms`` and ``to_exit_ms``."""
    spawned = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), kind, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    exited = time.perf_counter()
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-12:])
        raise RuntimeError(f"cold start ({kind}) exited {completed.returncode}: {tail}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["to_response_ms"] = (result.pop("ready") - spawned) * 1000
    result["to_exit_ms"] = (exited - spawned) * 1000
    return result


def measure(
    runs: dict[str, tuple[str, ...]], repeats: int, warmup: int
) -> dict[str, list[dict[str, Any]]]:
    """``runs``: name -> (kind, args...). Untimed warm-up rounds fill the page cache and write
    bytecode, then ``repeats`` rounds alternate the names; returns every run's result."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for round_ in range(warmup + repeats):
        for name, (kind, *args) in runs.items():
            result = run_once(kind, *args)
            if result["status"] != 200:
                raise RuntimeError(f"cold start {name} answered {result['status']}")
            if round_ >= warmup:
                results[name].append(result)
    return results


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
