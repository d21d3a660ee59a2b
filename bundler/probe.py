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
"""

import base64
import json
import sys
import time
from typing import Any


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
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
