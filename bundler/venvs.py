"""Which chalice packages for which Lambda runtime on this machine.

Chalice deploys for the runtime of the Python it runs under, and one virtualenv has one Python, so
the project keeps two: ``.venv`` (the trainer's, Python 3.11: torch's wheels here are 3.11 only)
and ``.venv-deploy`` (``scripts/setup-deploy``: the newest Python >= 3.12 with only chalice), whose
runtime Lambda still accepts. Everything else in the build runs in ``.venv``; only the
``chalice package``/``deploy`` step runs in the venv whose Python matches the target.
"""

import re
import shutil
import sys
from pathlib import Path

from bundler.runtime import ROOT, local_python

DEPLOY_VENV = ROOT / ".venv-deploy"
_VERSION = re.compile(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", re.MULTILINE)


def venv_python(venv: Path) -> str | None:
    """``"3.13"`` for a virtualenv made by Python 3.13 (from its ``pyvenv.cfg``), if it exists."""
    try:
        match = _VERSION.search((venv / "pyvenv.cfg").read_text())
    except OSError:
        return None
    return f"{match.group(1)}.{match.group(2)}" if match else None


def deploy_python() -> str | None:
    """The deploy venv's Python (the default target), or None before ``scripts/setup-deploy``."""
    if not (DEPLOY_VENV / "bin" / "chalice").is_file():
        return None
    return venv_python(DEPLOY_VENV)


def chalice_for(python: str) -> Path | None:
    """The chalice CLI that packages for the ``python{python}`` runtime here, if there is one."""
    if python == deploy_python():
        return DEPLOY_VENV / "bin" / "chalice"
    if python == local_python():
        # The running interpreter's own (.venv's), else one on PATH for a non-venv install.
        script = Path(sys.executable).with_name("chalice")
        found = str(script) if script.is_file() else shutil.which("chalice")
        return Path(found) if found else None
    return None
