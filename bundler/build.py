"""Build the deployment bundle: stage, vendor, strip, ``chalice package``, measure, check."""

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bundler.elf import ElfInfo, elf_files_in_tree, elf_files_in_zip, format_version, highest
from bundler.package import chalice_package
from bundler.runtime import ROOT, Target
from bundler.sizes import Row, layout_rows, limit_problems, zip_rows
from bundler.strip import Removed
from bundler.vendor import place_model, stage_app, vendor_packages, zip_layout
from bundler.venvs import chalice_for

APP_DIR = ROOT / "classify_api"
SHARED_DIR = ROOT / "shared"
DEFAULT_OUT = ROOT / "build" / "bundle"


@dataclass
class Bundle:
    target: Target
    app_dir: Path  # the folder chalice packaged (classify_api itself, or a staged copy)
    removed: list[Removed]
    rows: list[Row]
    zip_size: int
    deployment_zip: Path | None = None  # None for another runtime: measured from zip_layout()
    sam_json: Path | None = None
    elf_summary: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def system_library_problems(files: Iterable[tuple[str, ElfInfo]], target: Target) -> tuple:
    """Highest GLIBC/GLIBCXX each bundle needs vs. what the target image's libraries provide."""
    files = list(files)
    summary = {prefix: highest(files, prefix) for prefix in ("GLIBC", "GLIBCXX", "CXXABI")}
    problems = []
    for prefix, provided in (("GLIBC", target.glibc), ("GLIBCXX", target.glibcxx)):
        needed, where = summary[prefix]
        if needed > provided:
            problems.append(
                f"{where} needs {prefix}_{format_version(needed)}, but {target.image} has "
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
    goes to ``build/bundle``. ``chalice package`` runs from the venv whose Python matches the
    target (:mod:`bundler.venvs`: ``.venv`` for 3.11, ``.venv-deploy`` for 3.12+); for a target
    no venv here runs, the app is prepared and measured as chalice would zip it, unpackaged.
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
    vendor, removed = vendor_packages(app_dir, target.ensure_packages(), SHARED_DIR)
    if chalice_for(target.python) is None:
        rows, zip_size = layout_rows(zip_layout(app_dir))
        bundle = Bundle(target, app_dir, removed, rows, zip_size)
        elf_files = elf_files_in_tree(vendor)
    else:
        deployment_zip, sam_json = chalice_package(app_dir, package_dir, target.python)
        rows = zip_rows(deployment_zip)
        bundle = Bundle(target, app_dir, removed, rows, deployment_zip.stat().st_size)
        bundle.deployment_zip, bundle.sam_json = deployment_zip, sam_json
        elf_files = elf_files_in_zip(deployment_zip)
    bundle.elf_summary, elf_problems = system_library_problems(elf_files, target)
    bundle.problems = limit_problems(rows, bundle.zip_size) + elf_problems
    lifecycle = target.lifecycle_warning()
    bundle.warnings = [lifecycle] if lifecycle else []
    return bundle
