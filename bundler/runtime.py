"""The Lambda runtime the bundle targets: python3.12+ on Amazon Linux 2023, and its packages.

Chalice deploys for the runtime of the Python that runs it, so the bundle is built for the Python
of ``.venv-deploy`` (``scripts/setup-deploy``: the newest Python >= 3.12 here). python3.11 and older
run on Amazon Linux 2, which Lambda no longer accepts functions for. The runtime packages are the
pins in ``bundler/runtime.txt``, installed as manylinux wheels for the runtime's glibc and CPU into
``.runtimes/``; the export runs every model under exactly these before it is published.

    python -m bundler.runtime [--architecture arm64]   # fetch the packages (scripts/setup-deploy)
"""

import argparse
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.paths import REPO

PINS = REPO / "bundler" / "runtime.txt"
DEPLOY_VENV = REPO / ".venv-deploy"
RUNTIMES = REPO / ".runtimes"
MIN_PYTHON = (3, 12)
IMAGE = "Amazon Linux 2023"
GLIBC = (2, 34)
GLIBCXX = (3, 4, 29)  # GCC 11's libstdc++, which onnxruntime links from the image
# chalice's `lambda_architecture` -> the CPU name wheels and ELF files use.
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
# The newest ONNX IR and default-domain opset the exporter may write: what onnxruntime implements
# since 1.20 (its Versioning.md matrix), at or below every onnxruntime the pins have used. The
# export also runs the finished file under the pinned runtime, which has the final word.
MAX_IR_VERSION = 10
MAX_OPSET = 21

_VENV_VERSION = re.compile(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", re.MULTILINE)


class RuntimeSetupError(RuntimeError):
    """The deploy environment or its runtime packages are missing; the message says what to run."""


@dataclass(frozen=True)
class Target:
    """One Lambda runtime: a python3.12+ version on one CPU architecture."""

    python: str  # "3.13"
    architecture: str = "x86_64"  # chalice's name: x86_64 or arm64

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise RuntimeSetupError(
                f"lambda_architecture {self.architecture!r} is not supported; "
                f"use one of {', '.join(ARCHITECTURES)}"
            )
        if tuple(map(int, self.python.split("."))) < MIN_PYTHON:
            raise RuntimeSetupError(
                f"Lambda no longer accepts python{self.python} functions; build for python3.12+ "
                "(scripts/setup-deploy makes .venv-deploy)"
            )

    @property
    def machine(self) -> str:
        """``x86_64`` or ``aarch64``: what wheel tags and ELF headers call the CPU."""
        return ARCHITECTURES[self.architecture]

    @property
    def tag(self) -> str:
        return f"py{self.python.replace('.', '')}-{self.machine}"

    @property
    def packages_dir(self) -> Path:
        return RUNTIMES / self.tag

    @property
    def platforms(self) -> list[str]:
        major, top = GLIBC
        tags = [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(top, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    def describe(self) -> str:
        return f"python{self.python} {self.architecture} on {IMAGE} (glibc {GLIBC[0]}.{GLIBC[1]})"

    def fetch(self) -> Path:
        """Install the pinned wheels for this runtime into :attr:`packages_dir` (needs PyPI)."""
        # Afresh: pip --target leaves other versions' dist-info and files behind.
        shutil.rmtree(self.packages_dir, ignore_errors=True)
        cmd = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(self.packages_dir), "--upgrade", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", self.python, "-r", str(PINS),
        ]  # fmt: skip
        for tag in self.platforms:
            cmd += ["--platform", tag]
        subprocess.run(cmd, check=True)
        return self.packages_dir

    def ensure_packages(self) -> Path:
        """The runtime packages folder, fetched first if it is missing or holds other versions."""
        if not all((self.packages_dir / info).is_dir() for info in pinned_dist_infos()):
            self.fetch()
        return self.packages_dir

    def native(self) -> bool:
        """Whether this machine's CPU runs the target's binaries without emulation."""
        return platform.machine() in (self.machine, self.architecture)

    def strip_tool(self) -> str:
        """binutils' ``strip`` for the target's CPU (the host's own one only reads its own CPU)."""
        found = shutil.which(f"{self.machine}-linux-gnu-strip") or (
            shutil.which("strip") if self.native() else None
        )
        if not found:
            package = "binutils" if self.native() else f"binutils-{self.machine}-linux-gnu"
            raise RuntimeSetupError(
                f"no strip for {self.machine} libraries: install {package} "
                f"(apt-get install {package}; scripts/setup does it as root)"
            )
        return found


def pins() -> list[str]:
    """``["onnxruntime==1.28.0", ...]``: the runtime requirements without comments."""
    lines = (line.split("#")[0].strip() for line in PINS.read_text().splitlines())
    return [line for line in lines if line]


def pinned_dist_infos() -> list[str]:
    """The ``*.dist-info`` folder names an install of exactly the pins leaves."""
    return [
        f"{name}-{version}.dist-info" for name, _, version in (p.partition("==") for p in pins())
    ]


def venv_python(venv: Path) -> str | None:
    """``"3.13"`` for a virtualenv made by Python 3.13 (from its ``pyvenv.cfg``), if it exists."""
    try:
        match = _VENV_VERSION.search((venv / "pyvenv.cfg").read_text())
    except OSError:
        return None
    return f"{match.group(1)}.{match.group(2)}" if match else None


def deploy_interpreter() -> Path:
    """``.venv-deploy``'s Python: it packages the bundle and runs code under the runtime."""
    python = DEPLOY_VENV / "bin" / "python"
    if venv_python(DEPLOY_VENV) is None or not python.exists():
        raise RuntimeSetupError("no deploy environment (.venv-deploy): run scripts/setup-deploy")
    return python


def deploy_target(architecture: str = "x86_64") -> Target:
    """The runtime ``chalice deploy`` from ``.venv-deploy`` creates functions for."""
    deploy_interpreter()
    return Target(str(venv_python(DEPLOY_VENV)), architecture)


def local_target(architecture: str = "x86_64") -> Target:
    """The runtime of the Python running this code (``.venv-deploy`` runs ``bundler.runtime``)."""
    return Target(f"{sys.version_info.major}.{sys.version_info.minor}", architecture)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the Lambda runtime packages.")
    parser.add_argument("--architecture", choices=tuple(ARCHITECTURES), default="x86_64")
    args = parser.parse_args(argv)
    target = local_target(args.architecture)
    print(f"runtime packages for {target.describe()} in {target.fetch()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
