"""Zipped and unzipped size per top-level package of a deployment zip, and Lambda's limits."""

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chalice.constants import MAX_LAMBDA_DEPLOYMENT_SIZE

MAX_ZIPPED = MAX_LAMBDA_DEPLOYMENT_SIZE  # 50 MiB: Lambda's direct-upload limit, as chalice checks
MAX_UNZIPPED = 262_144_000  # Lambda's limit for the unzipped function code (250 MB)
TARGET_ZIPPED = 30 * 1024**2  # the project's goal with the fp32 model; a figure, not a limit
# The goal is stated for a trained fp32 MobileNetV2: torchvision's ImageNet weights + the head,
# exported by trainer.exporting.graph (10.2 MB), zip the way chalice zips it to this many bytes.
# Random weights (what the tests and the benchmark export) compress far worse: 9.3 MB.
TRAINED_FP32_MODEL_ZIPPED = 6_062_975
MODEL_PREFIX = "chalicelib/model/"


@dataclass
class Row:
    name: str
    files: int = 0
    zipped: int = 0
    unzipped: int = 0


def _group(filename: str) -> str:
    """The table row a zip member belongs to: its top-level package, with the model on its own."""
    if filename.startswith(MODEL_PREFIX):
        return MODEL_PREFIX.rstrip("/")
    top, _, rest = filename.partition("/")
    if not rest:
        return "(top-level files)"
    return "(*.dist-info)" if top.endswith(".dist-info") else top


def zip_rows(path: Path) -> list[Row]:
    """One row per top-level package, largest zipped first."""
    rows: dict[str, Row] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            row = rows.setdefault(_group(member.filename), Row(_group(member.filename)))
            row.files += 1
            row.zipped += member.compress_size
            row.unzipped += member.file_size
    return sorted(rows.values(), key=lambda r: r.zipped, reverse=True)


def layout_rows(layout: dict[str, Path]) -> tuple[list[Row], int]:
    """Rows and total zip size for files zipped the way chalice zips them (deflate, default level)."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "layout.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, file in layout.items():
                archive.write(file, name)
        return zip_rows(target), target.stat().st_size


def megabytes(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def format_table(rows: list[Row], zip_size: int) -> str:
    """A Markdown table (it reads fine in a terminal too) with a total line against the limits."""
    lines = [
        "| package | files | zipped | unzipped |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {r.name} | {r.files} | {megabytes(r.zipped)} | {megabytes(r.unzipped)} |"
            for r in rows
        ),
        f"| **total** | {sum(r.files for r in rows)} | **{megabytes(zip_size)}** "
        f"| **{megabytes(sum(r.unzipped for r in rows))}** |",
    ]
    return "\n".join(lines)


def model_zipped(rows: list[Row]) -> int:
    return sum(r.zipped for r in rows if r.name == MODEL_PREFIX.rstrip("/"))


def with_trained_model(rows: list[Row], zip_size: int) -> int:
    """The zip's size had it shipped a trained fp32 MobileNetV2 instead of its own model."""
    return zip_size - model_zipped(rows) + TRAINED_FP32_MODEL_ZIPPED


def limit_problems(rows: list[Row], zip_size: int) -> list[str]:
    """Lambda limits the bundle breaks (empty when it deploys)."""
    unzipped = sum(r.unzipped for r in rows)
    problems = []
    if zip_size > MAX_ZIPPED:
        problems.append(f"zipped {zip_size:,} bytes > {MAX_ZIPPED:,} (Lambda direct upload)")
    if unzipped > MAX_UNZIPPED:
        problems.append(f"unzipped {unzipped:,} bytes > {MAX_UNZIPPED:,} (Lambda code size)")
    return problems
