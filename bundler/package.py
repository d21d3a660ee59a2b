"""Run ``chalice package`` on a prepared app folder, offline."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_REGION = "us-east-1"


def chalice_command() -> list[str]:
    """The chalice CLI of the Python running the build (it decides the Lambda runtime)."""
    script = Path(sys.executable).with_name("chalice")
    if script.is_file():
        return [str(script)]
    found = shutil.which("chalice")
    if not found:
        raise FileNotFoundError("chalice is not installed: run scripts/setup")
    return [found]


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
    """``chalice package`` into ``out``; returns (deployment.zip, sam.json)."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [*chalice_command(), "package", "--stage", stage, str(out)]
    subprocess.run(cmd, cwd=app_dir, env=offline_env(), check=True)
    return out / "deployment.zip", out / "sam.json"
