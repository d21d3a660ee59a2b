"""Helpers for the bundle tests: one build per session, API Gateway events, the isolated probe.

(No tests here.) The builds are shared by tests/test_bundle.py and tests/test_deploy_rehearsal.py
through :func:`build_once`, so the suite runs ``chalice package`` once per runtime: the local one
(.venv's python3.11, legacy) and the deploy one (.venv-deploy's python3.12+, what users deploy).
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.build import Bundle, build
from bundler.runtime import Target, local_python, target_for
from bundler.venvs import chalice_for, deploy_python

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "bundler" / "probe.py"

_built: dict[tuple[str, Path], Bundle] = {}


def build_once(
    factory: pytest.TempPathFactory, target: Target, model: Path, name: str = "bundle"
) -> Bundle:
    """Build ``target`` with ``model`` into a temp folder, once per session."""
    key = (target.python, model)
    if key not in _built:
        _built[key] = build(target, model=model, out=factory.mktemp(name))
    return _built[key]


# The runtimes a real chalice packages here: .venv's (3.11, legacy) and .venv-deploy's (3.12+).
LOCAL, DEPLOY = "local", "deploy"


def build_packaged(factory: pytest.TempPathFactory, role: str, model: Path) -> Bundle:
    """The chalice-packaged bundle for ``role`` (LOCAL or DEPLOY), built once per session.

    Without the venv for that role (scripts/setup makes both) the test is skipped with the fix,
    except in CI (SKYCLASS_CI), where a missing deploy venv is a broken set-up, not a skip.
    """
    python = deploy_python() if role == DEPLOY else local_python()
    if python is None or chalice_for(python) is None:
        why = f"no chalice for the {role} runtime: run scripts/setup (it runs scripts/setup-deploy)"
        (pytest.fail if os.environ.get("SKYCLASS_CI") else pytest.skip)(why)
    return build_once(factory, target_for(python), model, name=f"bundle-{role}")


def pinned(target: Target, package: str) -> str:
    """The version of ``package`` the target's runtime requirements pin (``onnxruntime==X``)."""
    text = target.runtime.requirements.read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.MULTILINE)
    assert match, f"{package} is not pinned in {target.runtime.requirements}"
    return match.group(1)


def lambda_python(target: Target) -> str:
    """A real interpreter of the target runtime's Python version, to run the unzipped bundle."""
    python = find_python(target.python)
    assert python, f"no python{target.python} interpreter on this machine"
    return python


def unzip(deployment_zip: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=False)  # an empty folder: only what the zip holds
    with zipfile.ZipFile(deployment_zip) as archive:
        archive.extractall(folder)
    return folder


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


def find_python(version: str) -> str | None:
    """An interpreter for ``version`` ("3.12"): on PATH, or under pyenv, where this machine has it."""
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        map(str, Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    )
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0
        ):
            return candidate
    return None


def run_probe(python: str, folders: list[Path], request: dict[str, Any]) -> dict[str, Any]:
    """Run bundler/probe.py in ``python -I`` that sees only ``folders`` (and the stdlib)."""
    completed = subprocess.run(
        [python, "-I", str(PROBE), *map(str, folders)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folders[0],
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout)


def json_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)
