"""Runs inside the Lambda runtime: ``bundler.isolated.run_json(python, probe.py, request,
folders=[...])`` with the unzipped bundle (or a runtime packages folder) as its only folders.

Standard library only at the top, on purpose: nothing from the build environment may leak in.
:func:`proxy_event` and :class:`LambdaContext` are what Lambda hands the handler; the tests and the
benchmark build their events with them.
Every key of the request is optional; the answer has a key for each one asked for:

* ``"origins": true`` -> where numpy, onnxruntime, PIL and shared were imported from, ``sys.path``.
* ``"images": {name: base64}`` -> ``{name: [h, w, 3] | "error: ..."}`` through ``shared.decode``.
* ``"events": [event, ...]`` -> the Lambda handler ``app.app(event, context)``'s return values,
  with ``"timing"``: perf_counter at start, after ``import app`` and after the first event.
* ``"models": {"inputs": x.npy, "outputs": out.npz, "paths": [model.onnx, ...]}`` -> runs each
  model on the inputs with onnxruntime, writes its outputs as ``m0, m1, ...``, answers versions.
* ``"loaded": true`` -> afterwards, each Python module imported from the folders and whether
  valid bytecode for it was there (``"bytecode"``: ``"valid"``, ``"stale"`` or ``"missing"``).
* ``"compile": [[source, pyc, shown_name, "unchecked-hash" | "checked-hash"], ...]`` -> compiles
  with this interpreter, so the bytecode is the runtime's own.
* ``"warm": {"events": {name: event}, "requests": n, "warmup": n}`` -> per event the handler's
  wall times, its label and the median of each phase it reports; ``"memory"`` (same keys, events
  as a list) -> RSS over one warm process; ``"model_only": {"paths": {name: model}, "batches",
  "threads", "repeats", "warmup"}`` -> ``session.run`` times. The benchmark's measurements.
"""

import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PROBE = Path(__file__).resolve()  # for the host: the script to hand to bundler.isolated.run_json


class LambdaContext:
    """The attributes of the context object Lambda passes to a Python handler."""

    function_name = "skyclass-dev"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:skyclass-dev"
    memory_limit_in_mb = 1769
    aws_request_id = "probe-request"
    log_group_name = "/aws/lambda/skyclass-dev"
    log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event as the gateway sends it.

    ``bytes`` bodies are base64-encoded with ``isBase64Encoded`` (what the gateway does for a
    Content-Type listed in the API's binary media types), ``str`` bodies pass as text.
    """
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    binary = isinstance(body, bytes)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "apiId": "abc123",
            "accountId": "123456789012",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
            "protocol": "HTTP/1.1",
        },
        "body": base64.b64encode(body).decode() if binary else body,
        "isBase64Encoded": binary,
    }


def _origins() -> dict:
    import numpy
    import onnxruntime
    import PIL

    import shared

    modules = (numpy, onnxruntime, PIL, shared)
    return {"sys_path": list(sys.path), "files": {m.__name__: m.__file__ for m in modules}}


def _decode(images: dict) -> dict:
    from shared.decode import decode

    out = {}
    for name, data in images.items():
        try:
            out[name] = list(decode(base64.b64decode(data)).shape)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which asserts on it
            out[name] = f"error: {type(exc).__name__}: {exc}"
    return out


def _invoke(events: list, started: float) -> dict:
    import app

    imported = time.perf_counter()
    responses = [app.app(events[0], LambdaContext())] if events else []
    first = time.perf_counter()
    responses += [app.app(event, LambdaContext()) for event in events[1:]]
    timing = {"started": started, "imported": imported, "first_response": first}
    return {"app": app.__file__, "responses": responses, "timing": timing}


def _models(job: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    x = np.load(job["inputs"])
    outputs = {}
    for i, path in enumerate(job["paths"]):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outputs[f"m{i}"] = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.savez(job["outputs"], **outputs)
    return {"onnxruntime": ort.__version__, "numpy": np.__version__, "origin": ort.__file__}


def _loaded(folders: list[str]) -> list[dict]:
    """Python modules imported from ``folders`` and the state of the bytecode beside each."""
    from importlib.util import MAGIC_NUMBER, source_hash

    out = []
    for module in list(sys.modules.values()):
        source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
        if not source or not source.endswith(".py") or not source.startswith(tuple(folders)):
            continue
        try:
            header = Path(cached).read_bytes()[:16] if cached else b""
        except OSError:
            header = b""
        # Bit 0 of the flags word: hash-based; bit 1: check the source's hash on every import.
        flags = int.from_bytes(header[4:8], "little")
        state = "missing" if not header else "stale"
        if header[:4] == MAGIC_NUMBER and flags & 1:
            checked = flags & 2
            if not checked or header[8:16] == source_hash(Path(source).read_bytes()):
                state = "valid"
        out.append({"module": module.__name__, "file": source, "bytecode": state})
    return sorted(out, key=lambda m: m["file"])


def _compile(jobs: list) -> int:
    import py_compile

    for source, cfile, shown, mode in jobs:
        mode = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
        py_compile.compile(source, cfile, shown, doraise=True, invalidation_mode=mode)
    return len(jobs)


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise KeyError(field)


def _call(event: dict) -> tuple[float, dict]:
    import app

    start = time.perf_counter()
    response = app.app(event, LambdaContext())
    wall = (time.perf_counter() - start) * 1000
    body = json.loads(response["body"])
    if response["statusCode"] != 200:
        raise RuntimeError(f"the handler answered {response['statusCode']}: {body}")
    return wall, body


def _draft_ms(event: dict, repeats: int) -> list[float]:
    """Pillow alone decoding the event's JPEG at the draft scale ``shared.decode`` picks: the
    entropy-decoding floor under any request for that file."""
    import io

    from PIL import Image

    from shared.spec import DEFAULT_SPEC

    data, times = base64.b64decode(event["body"]), []
    for _ in range(repeats):
        start = time.perf_counter()
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            scale = DEFAULT_SPEC.resize / min(width, height)
            img.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            img.load()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _warm(job: dict) -> dict:
    out: dict[str, Any] = {}
    for name, event in job["events"].items():
        for _ in range(job["warmup"]):
            _call(event)
        calls = [_call(event) for _ in range(job["requests"])]
        phases = {
            k: statistics.median(b["timing_ms"][k] for _, b in calls)
            for k in calls[0][1]["timing_ms"]
        }
        times = [wall for wall, _ in calls]
        # What the handler adds around the three phases: routing, base64, checks, JSON.
        phases["rest"] = statistics.median(wall - sum(b["timing_ms"].values()) for wall, b in calls)
        answer = calls[-1][1]
        out[name] = {"times_ms": times, "label": answer["label"], "phases_ms": phases,
                     "rejection": answer.get("known_score") is not None,
                     "draft_ms": _draft_ms(event, job["requests"])}  # fmt: skip
    out["peak_rss_mb"] = _rss_mb("VmHWM")
    return out


def _memory(job: dict) -> dict:
    events = job["events"]
    for i in range(job["warmup"]):
        _call(events[i % len(events)])
    warm = _rss_mb("VmRSS")
    for i in range(job["requests"]):
        _call(events[i % len(events)])
    end = _rss_mb("VmRSS")
    growth = (end - warm) / warm * 100
    return {"rss_after_warmup_mb": warm, "rss_end_mb": end, "growth_pct": growth,
            "peak_rss_mb": _rss_mb("VmHWM")}  # fmt: skip


def _model_only(job: dict) -> list[dict]:
    import numpy as np
    import onnxruntime as ort

    cells = []
    for name, path in job["paths"].items():
        for threads in job["threads"]:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feed = session.get_inputs()[0]
            image = tuple(feed.shape[1:])  # the served input size, whatever the export chose
            for batch in job["batches"]:
                # Deterministic, not random: the bundle has no numpy.random (bundler/strip.py).
                size = batch * int(np.prod(image))
                x = np.sin(np.arange(size, dtype=np.float32)).reshape(batch, *image)
                for _ in range(job["warmup"]):
                    session.run(None, {feed.name: x})
                times = []
                for _ in range(job["repeats"]):
                    start = time.perf_counter()
                    session.run(None, {feed.name: x})
                    times.append((time.perf_counter() - start) * 1000)
                cells.append({"engine": f"onnxruntime {name}", "batch": batch, "threads": threads,
                              "times_ms": times})  # fmt: skip
    return cells


def main() -> None:
    started = time.perf_counter()
    request = json.load(sys.stdin) or {}
    answer: dict = {}
    # Events first: a cold start is timed from the interpreter's start to the first answer.
    if "events" in request:
        answer["invoke"] = _invoke(request["events"], started)
    if request.get("origins"):
        answer["origins"] = _origins()
    if "images" in request:
        answer["decoded"] = _decode(request["images"])
    if "models" in request:
        answer["models"] = _models(request["models"])
    if "compile" in request:
        answer["compiled"] = _compile(request["compile"])
    for key, job in (("warm", _warm), ("memory", _memory), ("model_only", _model_only)):
        if key in request:
            answer[key] = job(request[key])
    if request.get("loaded"):
        # The folders run_json put first on the path: the bundle, not the standard library.
        answer["loaded"] = _loaded(os.environ.get("PYTHONPATH", "").split(os.pathsep))
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
