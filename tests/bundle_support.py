"""Helpers for the bundle tests: one build per session, the unzipped bundle, the isolated probe.

(No tests here.) The build is shared by tests/test_bundle.py and tests/test_deploy_rehearsal.py
through :func:`build_packaged`, so the suite runs ``chalice package`` once.
"""

import base64
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.build import Bundle, build
from bundler.isolated import run_json
from bundler.probe import PROBE
from bundler.runtime import PINS, RuntimeSetupError, deploy_interpreter, deploy_target

_built: dict[Path, Bundle] = {}


def build_packaged(factory: pytest.TempPathFactory, model: Path) -> Bundle:
    """The chalice-packaged bundle of the deploy runtime with ``model``, built once per session.

    Without .venv-deploy (scripts/setup makes it) the test is skipped with the fix, except in CI
    (SKYCLASS_CI), where a missing deploy venv is a broken set-up, not a skip.
    """
    try:
        target = deploy_target()
    except RuntimeSetupError as exc:
        (pytest.fail if os.environ.get("SKYCLASS_CI") else pytest.skip)(str(exc))
    if model not in _built:
        _built[model] = build(target, model=model, out=factory.mktemp("bundle"))
    return _built[model]


def pinned(package: str) -> str:
    """The version of ``package`` the runtime requirements pin (``onnxruntime==X``)."""
    match = re.search(rf"^{re.escape(package)}==(\S+)", PINS.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {PINS}"
    return match.group(1)


def unzip(deployment_zip: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=False)  # an empty folder: only what the zip holds
    with zipfile.ZipFile(deployment_zip) as archive:
        archive.extractall(folder)
    return folder


def run_probe(folders: list[Path], request: dict[str, Any]) -> dict[str, Any]:
    """Run bundler/probe.py under the deploy Python, seeing only ``folders`` and the stdlib."""
    return run_json(
        deploy_interpreter(),
        PROBE,
        request,
        folders=folders,
        cwd=folders[0],
        env={"AWS_DEFAULT_REGION": "us-east-1"},
        timeout=300,
    )


def json_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)
