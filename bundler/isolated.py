"""Run a script in a fresh interpreter and hand its JSON answer back: the one way the project
runs code somewhere other than the current process.

Two uses. Isolated (the default): ``python -P -S -s`` sees only the standard library and the
folders given, as Lambda's interpreter sees only ``/var/task`` -- the export runs models under the
bundle's onnxruntime this way, the bundle tests and the benchmark's cold start run the unzipped
zip this way. With ``site=True`` the child keeps its installed packages: the benchmark measures
torch and onnxruntime in separate processes so that neither's threads or memory touch the other.

The request goes to the child's stdin as JSON; the child prints its answer as one JSON line,
the last line of its stdout (see :mod:`bundler.probe`).
"""

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ChildError(RuntimeError):
    """The child interpreter failed; the message carries the end of its stderr."""


def run_json(
    python: str | os.PathLike[str],
    script: str | os.PathLike[str],
    request: Any = None,
    *,
    folders: Sequence[str | os.PathLike[str]] = (),
    site: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 600,
) -> Any:
    """Run ``script`` under ``python`` with ``folders`` first on its path; return its answer."""
    flags = [] if site else ["-P", "-S", "-s"]
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(Path(f)) for f in folders),
        "PYTHONDONTWRITEBYTECODE": "1",
        **({"HOME": os.environ["HOME"]} if "HOME" in os.environ else {}),
        **(env or {}),
    }
    proc = subprocess.run(
        [os.fspath(python), *flags, os.fspath(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=child_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:]) or "(no output)"
        raise ChildError(f"{Path(script).name} under {python} exited {proc.returncode}: {tail}")
    return json.loads(lines[-1])
