"""Build the deployment bundle: stage, vendor, strip, ``chalice package``, measure, check."""

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bundler.elf import ElfInfo, elf_files_in_zip, format_version, highest
from bundler.package import chalice_package
from bundler.runtime import GLIBC, GLIBCXX, IMAGE, Target
from bundler.sizes import Row, limit_problems, zip_rows
from bundler.strip import Removed
from bundler.vendor import place_model, stage_app, vendor_packages
from shared.paths import APP_DIR, REPO

SHARED_DIR = REPO / "shared"
DEFAULT_OUT = REPO / "build" / "bundle"


@dataclass
class Bundle:
    target: Target
    app_dir: Path  # the folder chalice packaged (classify_api itself, or a staged copy)
    removed: list[Removed]
    rows: list[Row]
    zip_size: int
    deployment_zip: Path
    sam_json: Path
    elf_summary: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def system_library_problems(files: Iterable[tuple[str, ElfInfo]]) -> tuple:
    """Highest GLIBC/GLIBCXX the bundle needs vs. what the runtime image's libraries provide."""
    files = list(files)
    summary = {prefix: highest(files, prefix) for prefix in ("GLIBC", "GLIBCXX", "CXXABI")}
    problems = []
    for prefix, provided in (("GLIBC", GLIBC), ("GLIBCXX", GLIBCXX)):
        needed, where = summary[prefix]
        if needed > provided:
            problems.append(
                f"{where} needs {prefix}_{format_version(needed)}, but {IMAGE} has "
                f"{format_version(provided)}"
            )
    return summary, problems


def build(
    target: Target,
    model: Path | None = None,
    out: Path | None = None,
    app_source: Path = APP_DIR,
) -> Bundle:
    """Build for ``target``; with ``out``, in a staged copy of the app under ``out/app``.

    Without ``out`` the working tree's app folder is prepared in place (``vendor/`` is
    git-ignored) so that ``chalice deploy`` run there ships the same thing, and the package
    goes to ``build/bundle``.
    """
    if out is None:
        app_dir, package_dir = app_source, DEFAULT_OUT
        if model is not None:
            raise ValueError("--model needs --out: the working tree's model is the published one")
        # chalice zips chalicelib/ as it is: bytecode left by local runs would ship (a staged
        # copy never holds any).
        for cache in (app_dir / "chalicelib").rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
    else:
        app_dir, package_dir = stage_app(app_source, out / "app"), out / "package"
    place_model(app_dir, model)
    _, removed = vendor_packages(app_dir, target, SHARED_DIR)
    deployment_zip, sam_json = chalice_package(app_dir, package_dir)
    rows = zip_rows(deployment_zip)
    bundle = Bundle(
        target, app_dir, removed, rows, deployment_zip.stat().st_size, deployment_zip, sam_json
    )
    bundle.elf_summary, elf_problems = system_library_problems(elf_files_in_zip(deployment_zip))
    bundle.problems = limit_problems(rows, bundle.zip_size) + elf_problems
    return bundle
