"""The Lambda runtime a bundle targets and what its system libraries provide.

Chalice deploys for the runtime matching the Python that runs it (3.10/3.11 -> Amazon Linux 2,
3.12+ -> Amazon Linux 2023); ``scripts/fetch_runtime.py`` owns that mapping and the glibc of each
image. The libstdc++ of each image matters too: onnxruntime links the system ``libstdc++.so.6``.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.fetch_runtime import ROOT, Runtime, default_dest, fetch, runtime_for

# GLIBCXX_ version of the image's libstdc++: Amazon Linux 2 ships GCC 7.3's (3.4.24),
# Amazon Linux 2023 GCC 11's (3.4.29).
_GLIBCXX = {(2, 26): (3, 4, 24), (2, 34): (3, 4, 29)}
_IMAGE = {(2, 26): "Amazon Linux 2", (2, 34): "Amazon Linux 2023"}


@dataclass(frozen=True)
class Target:
    """One Lambda Python runtime: its packages and the system library versions it provides."""

    runtime: Runtime

    @property
    def python(self) -> str:
        return self.runtime.python

    @property
    def glibc(self) -> tuple[int, ...]:
        return self.runtime.glibc

    @property
    def glibcxx(self) -> tuple[int, ...]:
        return _GLIBCXX[self.runtime.glibc]

    @property
    def image(self) -> str:
        return _IMAGE[self.runtime.glibc]

    @property
    def packages_dir(self) -> Path:
        """Where ``scripts/fetch_runtime.py`` installs this runtime's packages."""
        return default_dest(self.runtime)

    def ensure_packages(self) -> Path:
        """The runtime packages folder, fetched first if it is missing (needs the package index)."""
        if not (self.packages_dir / "onnxruntime").is_dir():
            fetch(self.runtime, self.packages_dir)
        return self.packages_dir

    def describe(self) -> str:
        return f"python{self.python} on {self.image} (glibc {'.'.join(map(str, self.glibc))})"


def local_python() -> str:
    """The Python chalice would deploy for: the one running this code."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def target_for(python: str | None = None) -> Target:
    return Target(runtime_for(python or local_python()))


__all__ = ["ROOT", "Target", "local_python", "target_for"]
