"""Run ``chalice package`` on a prepared app folder, offline, with the deploy venv's chalice."""

import os
import shutil
import subprocess
from pathlib import Path

from bundler.runtime import DEPLOY_VENV

DEFAULT_REGION = "us-east-1"


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for chalice: a region (packaging needs one, not credentials) and no index.

    requirements.txt is empty, so chalice has nothing to download; PIP_NO_INDEX makes any
    attempt fail loudly instead of silently pulling onnxruntime's dependency tree.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    env["PIP_NO_INDEX"] = "1"
    return env


def chalice_package(app_dir: Path, out: Path, stage: str = "dev") -> tuple[Path, Path]:
    """``chalice package`` into ``out``; returns (deployment.zip, sam.json).

    Chalice imports ``app.py`` to package it and chooses the Lambda runtime from the Python it
    runs under, so it runs from ``.venv-deploy``, the Python the vendored packages were built for.
    """
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(DEPLOY_VENV / "bin" / "chalice"), "package", "--stage", stage, str(out)]
    subprocess.run(cmd, cwd=app_dir, env=offline_env(), check=True)
    return out / "deployment.zip", out / "sam.json"
