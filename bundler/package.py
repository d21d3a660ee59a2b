"""Run ``chalice package`` on a prepared app folder, offline, with the deploy venv's chalice."""

import json
import os
import re
import shutil
import subprocess
import sys
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
    # chalice's progress lines go to stderr: stdout carries the caller's report.
    subprocess.run(cmd, cwd=app_dir, env=offline_env(), check=True, stdout=sys.stderr)
    fix_log_group_reference(out / "sam.json")
    return out / "deployment.zip", out / "sam.json"


def fix_log_group_reference(sam_json: Path) -> list[str]:
    """Point the log group's ``Fn::Sub`` at the function's real logical id; returns what changed.

    With ``log_retention_in_days`` chalice (1.34, aws/chalice#2079) names the log group
    ``/aws/lambda/${ApiHandler}`` while the function's logical id is ``APIHandler``: CloudFormation
    refuses the template. ``chalice deploy`` is not affected (it sets the retention through the
    API), the template for CloudFormation users is.
    """
    template = json.loads(sam_json.read_text(encoding="utf-8"))
    resources = template.get("Resources", {})
    by_lower = {name.lower(): name for name in resources}
    fixed = []

    def repair(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in resources or name.lower() not in by_lower:
            return match.group(0)
        fixed.append(f"{name} -> {by_lower[name.lower()]}")
        return "${" + by_lower[name.lower()] + "}"

    for resource in resources.values():
        if resource.get("Type") != "AWS::Logs::LogGroup":
            continue
        name = resource.get("Properties", {}).get("LogGroupName")
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            name["Fn::Sub"] = re.sub(r"\$\{(\w+)\}", repair, name["Fn::Sub"])
    if fixed:
        sam_json.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    return fixed
