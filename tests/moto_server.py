"""A moto server on loopback for the deploy rehearsal: ``python tests/moto_server.py PORT``.

``chalice deploy`` runs unmodified against it. moto 5.2.1's API Gateway import differs from the
real service in three ways that chalice's document hits, so the fake is brought in line with AWS
here (each shim copies what API Gateway documents; none invents a result):

1. ImportRestApi reads ``info.description`` unconditionally (KeyError -> HTTP 500). The Swagger
   Info Object makes it optional and chalice's generator never writes it: its ``info`` is a fixed
   ``{"version": "1.0", "title": app_name}`` with no config key, docstring or hook that reaches it
   (chalice/deploy/swagger.py; view docstrings only fill per-operation descriptions).
2. moto imports only OpenAPI 3 ("Only OpenAPI 3.x.x are currently supported"); chalice writes
   Swagger 2.0, which API Gateway imports. The parts moto reads (``paths``, methods,
   ``x-amazon-apigateway-integration``) have the same shape in both versions.
3. moto ignores ``x-amazon-apigateway-binary-media-types``; API Gateway sets the API's
   ``binaryMediaTypes`` from it, which is how chalice declares them (no separate API call).
4. moto's PutIntegration needs ``uri`` and ``httpMethod``; a ``mock`` integration (chalice's CORS
   preflight ``OPTIONS``) has neither, in AWS as in the document.
"""

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _import_like_api_gateway() -> None:
    from moto.apigateway.models import APIGatewayBackend

    backend = APIGatewayBackend
    import_rest_api, put_rest_api = backend.import_rest_api, backend.put_rest_api
    put_integration = backend.put_integration

    def import_with_optional_description(
        self: Any, api_doc: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        api_doc.setdefault("info", {}).setdefault("description", "")  # (1)
        return import_rest_api(self, api_doc, *args, **kw)

    def put_swagger(
        self: Any, function_id: str, api_doc: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        if str(api_doc.get("swagger", "")).startswith("2."):  # (2)
            api_doc = {k: v for k, v in api_doc.items() if k != "swagger"}
        api = put_rest_api(self, function_id, api_doc, *args, **kw)
        if "x-amazon-apigateway-binary-media-types" in api_doc:  # (3)
            api.binaryMediaTypes = list(api_doc["x-amazon-apigateway-binary-media-types"])
        return api

    def put_mock_integration(
        self: Any,
        *args: Any,
        uri: str | None = None,
        integration_method: str | None = None,
        **kw: Any,
    ) -> Any:
        return put_integration(
            self, *args, uri=uri, integration_method=integration_method, **kw
        )  # (4)

    backend.import_rest_api = import_with_optional_description
    backend.put_rest_api = put_swagger
    backend.put_integration = put_mock_integration


@contextlib.contextmanager
def moto_server(port: int, log: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run this file as a server on ``127.0.0.1:port``; yields its endpoint URL."""
    endpoint = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"moto server did not start: {tail}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto3/chalice at the fake with fake credentials, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


if __name__ == "__main__":
    from moto.server import main

    _import_like_api_gateway()
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
