"""Run ``chalice package`` on a prepared app folder, offline, with the chalice for the target."""

import os
import shutil
import subprocess
from pathlib import Path

from bundler.venvs import chalice_for

DEFAULT_REGION = "us-east-1"


def chalice_command(python: str) -> list[str]:
    """The chalice CLI for the ``python{python}`` runtime (see :mod:`bundler.venvs`)."""
    script = chalice_for(python)
    if script is None:
        raise FileNotFoundError(
            f"no chalice runs on Python {python} here: run scripts/setup-deploy "
            f"(PYTHON=python{python} for this version) or scripts/setup for .venv"
        )
    return [str(script)]


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for chalice: a region (packaging needs one, not credentials) and no index.

    requirements.txt is empty, so chalice has nothing to download; PIP_NO_INDEX makes any
    attempt fail loudly instead of silently pulling onnxruntime's dependency tree.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    env["PIP_NO_INDEX"] = "1"
    return env


def chalice_package(app_dir: Path, out: Path, python: str, stage: str = "dev") -> tuple[Path, Path]:
    """``chalice package`` for ``python{python}`` into ``out``; returns (deployment.zip, sam.json).

    Chalice imports ``app.py`` to package it; the app's imports resolve from ``vendor/`` (chalice
    appends it to ``sys.path``), which holds that runtime's packages, so the chalice must run on
    the same Python minor version as the target.
    """
    if out.exists():
        shutil.rmtree(out)
    cmd = [*chalice_command(python), "package", "--stage", stage, str(out)]
    subprocess.run(cmd, cwd=app_dir, env=offline_env(), check=True)
    return out / "deployment.zip", out / "sam.json"
