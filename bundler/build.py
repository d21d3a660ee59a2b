"""Build the deployment bundle: stage, vendor, strip, ``chalice package``, measure, check."""

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bundler.elf import ElfInfo, elf_files_in_zip, format_version, highest
from bundler.package import chalice_package
from bundler.runtime import GLIBC, GLIBCXX, IMAGE, Target
from bundler.sizes import Row, limit_problems, zip_rows
from bundler.strip import Removed
from bundler.vendor import place_model, stage_app, vendor_packages, write_stamp
from bundler.verify import verify_and_compile
from shared.paths import APP_DIR, REPO, stage_architecture

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
    ran_under: str = ""  # what ran the stripped bundle before it was zipped
    bytecode: int = 0  # modules shipped with bytecode
    elf_summary: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def system_library_problems(files: Iterable[tuple[str, ElfInfo]], machine: str) -> tuple:
    """CPU and highest GLIBC/GLIBCXX every compiled file needs vs. what the runtime provides."""
    files = list(files)
    summary = {prefix: highest(files, prefix) for prefix in ("GLIBC", "GLIBCXX", "CXXABI")}
    foreign = [name for name, info in files if info.machine != machine]
    problems = [
        f"{len(foreign)} compiled file(s) are not {machine} ({foreign[0]}: "
        f"{dict(files)[foreign[0]].machine})"
    ] if foreign else []  # fmt: skip
    for prefix, provided in (("GLIBC", GLIBC), ("GLIBCXX", GLIBCXX)):
        needed, where = summary[prefix]
        if needed > provided:
            problems.append(
                f"{where} needs {prefix}_{format_version(needed)}, but {IMAGE} has "
                f"{format_version(provided)}"
            )
    return summary, problems


def set_stage_architecture(app_dir: Path, architecture: str, stage: str = "dev") -> None:
    """Make a staged app's ``stage`` deploy to ``architecture`` (what chalice puts in sam.json)."""
    path = app_dir / ".chalice" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault("stages", {}).setdefault(stage, {})["lambda_architecture"] = architecture
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


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
        # chalice zips chalicelib/ as it is: bytecode left by local runs (other Pythons,
        # timestamp-checked) would ship beside the build's own (a staged copy never holds any).
        for cache in (app_dir / "chalicelib").rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
    else:
        app_dir, package_dir = stage_app(app_source, out / "app"), out / "package"
        set_stage_architecture(app_dir, target.architecture)
    if stage_architecture(app_dir) != target.architecture:
        raise ValueError(
            f"stage dev deploys {stage_architecture(app_dir)}, not {target.architecture}"
        )
    place_model(app_dir, model)
    vendor, removed = vendor_packages(app_dir, target, SHARED_DIR)
    verified = verify_and_compile(target, app_dir, vendor)
    write_stamp(vendor, target)
    deployment_zip, sam_json = chalice_package(app_dir, package_dir)
    rows = zip_rows(deployment_zip)
    bundle = Bundle(
        target, app_dir, removed, rows, deployment_zip.stat().st_size, deployment_zip, sam_json,
        verified.ran_under, verified.compiled,
    )  # fmt: skip
    files = elf_files_in_zip(deployment_zip)
    bundle.elf_summary, elf_problems = system_library_problems(files, target.machine)
    bundle.problems = limit_problems(rows, bundle.zip_size) + elf_problems
    return bundle
