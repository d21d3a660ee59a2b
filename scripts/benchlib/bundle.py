"""Section 4, bundle: the Lambda deployment zip built by the project's ``bundler`` around a model.

``bundler.build.build`` stages a copy of the app in a temp folder, vendors the stripped runtime
packages and runs ``chalice package`` (offline), exactly as ``scripts/build_bundle --model M --out
DIR`` does; the sizes are those of the resulting ``deployment.zip``.
"""

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bundler.build import build
from bundler.runtime import target_for
from bundler.sizes import MAX_UNZIPPED, MAX_ZIPPED, TARGET_ZIPPED

MB = 1024**2


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """``chalice package`` (a child process) prints to file descriptor 1; the bench's stdout is
    the table, so point descriptor 1 at stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def measure(model: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="skyclass-bench-bundle-") as tmp, _stdout_to_stderr():
        bundle = build(target_for(), model=model, out=Path(tmp))
    model_rows = [r for r in bundle.rows if r.name.startswith("chalicelib/model")]
    return {
        "target": bundle.target.describe(),
        "model": str(model),
        "zipped_mb": bundle.zip_size / MB,
        "unzipped_mb": sum(r.unzipped for r in bundle.rows) / MB,
        "model_zipped_mb": sum(r.zipped for r in model_rows) / MB,
        "limit_zipped_mb": MAX_ZIPPED / MB,
        "limit_unzipped_mb": MAX_UNZIPPED / MB,
        "project_goal_zipped_mb": TARGET_ZIPPED / MB,
        "problems": bundle.problems,
        "largest": [
            {"name": r.name, "zipped_mb": r.zipped / MB, "unzipped_mb": r.unzipped / MB}
            for r in bundle.rows[:8]
        ],
    }
