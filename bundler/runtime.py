"""The Lambda runtime a bundle targets and what its system libraries provide.

Chalice deploys for the runtime matching the Python that runs it (3.10/3.11 -> Amazon Linux 2,
3.12+ -> Amazon Linux 2023); ``scripts/fetch_runtime.py`` owns that mapping and the glibc of each
image. The libstdc++ of each image matters too: onnxruntime links the system ``libstdc++.so.6``.
"""

import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scripts.fetch_runtime import ROOT, Runtime, default_dest, fetch, runtime_for

# GLIBCXX_ version of the image's libstdc++: Amazon Linux 2 ships GCC 7.3's (3.4.24),
# Amazon Linux 2023 GCC 11's (3.4.29).
_GLIBCXX = {(2, 26): (3, 4, 24), (2, 34): (3, 4, 29)}
_IMAGE = {(2, 26): "Amazon Linux 2", (2, 34): "Amazon Linux 2023"}
# AWS's Lambda runtime lifecycle (the dates cfn-lint's E2531/E2533/W2531 check): deprecation, then
# CreateFunction refused, then UpdateFunctionCode refused. The Amazon Linux 2 runtimes end with AL2.
_LIFECYCLE = {
    "3.10": (date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31)),
    "3.11": (date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31)),
    "3.12": (date(2028, 10, 31), date(2028, 11, 30), date(2029, 1, 10)),
    "3.13": (date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31)),
    "3.14": (date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31)),
}


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

    def lifecycle_warning(self, today: date | None = None) -> str | None:
        """Why AWS would refuse or discourage deploying this runtime ``today``, if it would."""
        dates = _LIFECYCLE.get(self.python)
        today = today or date.today()
        if dates is None or today < dates[0]:
            return None
        deprecated, create_block, update_block = dates
        if today >= update_block:
            state = f"creating (since {create_block}) and updating (since {update_block}) functions"
        elif today >= create_block:
            state = f"creating functions (since {create_block}; updates until {update_block})"
        else:
            return f"Lambda deprecated python{self.python} on {deprecated}; creation ends {create_block}"
        return (
            f"Lambda refuses python{self.python} for {state}: `chalice deploy` from this Python "
            "fails on AWS. Build without --python (the python3.12+ .venv-deploy) and deploy "
            "with scripts/deploy."
        )

    def describe(self) -> str:
        return f"python{self.python} on {self.image} (glibc {'.'.join(map(str, self.glibc))})"


def local_python() -> str:
    """The Python chalice would deploy for: the one running this code."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def target_for(python: str | None = None) -> Target:
    return Target(runtime_for(python or local_python()))


__all__ = ["ROOT", "Target", "local_python", "target_for"]
