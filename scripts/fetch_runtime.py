"""Install the Lambda runtime packages for a target Python into a folder, as Lambda will see them.

    python scripts/fetch_runtime.py [--python 3.11] [--dest .runtimes/py311]

Wheels come only from manylinux tags the target runtime's glibc supports (2.26 for python3.10/3.11
on Amazon Linux 2, 2.34 for python3.12+ on Amazon Linux 2023), for x86_64, without dependencies
(see classify_api/runtime-*.txt). The folder is what scripts/build_bundle vendors and what tests use
to run the exported model under the exact onnxruntime the bundle ships.
"""

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Runtime:
    python: str  # "3.11"
    glibc: tuple[int, int]
    requirements: Path

    @property
    def tag(self) -> str:
        return "py" + self.python.replace(".", "")

    @property
    def platforms(self) -> list[str]:
        major, top = self.glibc
        tags = [f"manylinux_{major}_{minor}_x86_64" for minor in range(top, 16, -1)]
        return [*tags, "manylinux2014_x86_64"]


def runtime_for(python: str) -> Runtime:
    """The Lambda runtime chalice picks for a local ``python`` (``"3.11"``, ``"3.12"``, ...)."""
    minor = int(python.split(".")[1])
    if minor < 10:
        raise SystemExit(f"python {python} is too old for a supported Lambda runtime (need 3.10+)")
    if minor <= 11:
        return Runtime(python, (2, 26), ROOT / "classify_api" / "runtime-py311.txt")
    return Runtime(python, (2, 34), ROOT / "classify_api" / "runtime-py312plus.txt")


def default_dest(runtime: Runtime) -> Path:
    return ROOT / ".runtimes" / runtime.tag


def fetch(runtime: Runtime, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(dest), "--upgrade", "--no-deps", "--only-binary=:all:",
        "--implementation", "cp", "--python-version", runtime.python,
        "-r", str(runtime.requirements),
    ]  # fmt: skip
    for platform in runtime.platforms:
        cmd += ["--platform", platform]
    subprocess.run(cmd, check=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    local = f"{sys.version_info.major}.{sys.version_info.minor}"
    parser.add_argument("--python", default=local, help=f"target Lambda Python (default {local})")
    parser.add_argument("--dest", type=Path, help="folder to install into (default .runtimes/pyXY)")
    args = parser.parse_args(argv)
    runtime = runtime_for(args.python)
    dest = fetch(runtime, args.dest or default_dest(runtime))
    print(
        f"runtime packages for python{runtime.python} (glibc {runtime.glibc[0]}.{runtime.glibc[1]}) in {dest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
