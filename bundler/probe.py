"""Run inside the bundle: ``python -I bundler/probe.py DIR [DIR...] < request.json > result.json``.

A fresh interpreter sees only the given folders (plus the standard library; every site-packages
entry is removed), as Lambda's does with the unzipped deployment package. It reports where each
runtime package was imported from, decodes the given images with ``shared.decode`` and, if asked,
invokes the Lambda handler ``app.app(event, context)`` with API Gateway proxy events.
Standard library only, on purpose: nothing from the build environment may leak in.

request: {"images": {name: base64}, "events": [event, ...]}
result:  {"sys_path": [...], "origins": {module: file}, "decoded": {name: [h, w, c] | "error"},
          "responses": [handler return value, ...]}
"""

import base64
import json
import sys


class LambdaContext:
    """The attributes of the context object Lambda passes to a Python handler."""

    function_name = "skyclass-dev"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:skyclass-dev"
    memory_limit_in_mb = 1024
    aws_request_id = "probe-request"
    log_group_name = "/aws/lambda/skyclass-dev"
    log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def isolate(folders: list[str]) -> None:
    keep = [p for p in sys.path if p and "site-packages" not in p and "dist-packages" not in p]
    sys.path[:] = folders + keep


def main() -> None:
    isolate(sys.argv[1:])
    request = json.load(sys.stdin)
    result: dict = {"sys_path": list(sys.path), "origins": {}, "decoded": {}, "responses": []}
    import numpy
    import onnxruntime
    import PIL

    import shared

    for module in (numpy, onnxruntime, PIL, shared):
        result["origins"][module.__name__] = module.__file__
    for name, data in request.get("images", {}).items():
        try:
            result["decoded"][name] = list(shared.decode(base64.b64decode(data)).shape)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which asserts on it
            result["decoded"][name] = f"error: {type(exc).__name__}: {exc}"
    if request.get("events"):
        import app

        result["origins"]["app"] = app.__file__
        result["responses"] = [app.app(event, LambdaContext()) for event in request["events"]]
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
