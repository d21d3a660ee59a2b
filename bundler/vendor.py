"""Lay out an app folder the way ``chalice package`` wants it: model, ``vendor/`` and all.

``vendor/`` is copied by chalice to the root of the deployment zip, so the runtime packages and
the ``shared/`` contract land next to ``app.py`` exactly as on Lambda's ``sys.path``. A stamp in
it says which runtime it was built for; the app refuses to be packaged from anything else.
"""

import json
import shutil
from pathlib import Path

from bundler.runtime import Target, pins
from bundler.strip import Removed, strip, strip_binaries
from shared.paths import APP_MODEL, VENDOR_STAMP

# Never copied into a stage: rebuilt (vendor), replaced (model) or local state of real deploys.
_STAGE_SKIP = {"vendor", "chalicelib/model", ".chalice/deployments", ".chalice/deployed"}


def stage_app(source: Path, stage: Path) -> Path:
    """Copy the app sources to ``stage`` so a build never writes into the working tree."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(source)
        skipped = {n for n in names if (relative / n).as_posix() in _STAGE_SKIP}
        return skipped | {n for n in names if n == "__pycache__" or n.endswith(".pyc")}

    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(source, stage, ignore=ignore)
    return stage


def place_model(app_dir: Path, model: Path | None) -> Path:
    """Put ``model`` where the app loads it; with no model, the published one must be there."""
    destination = app_dir / APP_MODEL
    if model is not None and model.resolve() != destination.resolve():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, destination)
    if not destination.is_file():
        raise FileNotFoundError(
            f"no model at {destination}: publish one with "
            "`python -m trainer.export RUN_DIR --publish` or pass --model PATH with --out DIR"
        )
    return destination


def vendor_packages(app_dir: Path, target: Target, shared: Path) -> tuple[Path, list[Removed]]:
    """Fill ``app_dir/vendor`` afresh from the runtime packages and ``shared/``, then strip it.

    No stamp yet: a vendor/ without one is refused by ``chalice deploy`` until it has run.
    """
    vendor = app_dir / "vendor"
    tool = target.strip_tool()  # before anything is removed: a missing tool is a set-up error
    if vendor.exists():
        shutil.rmtree(vendor)
    shutil.copytree(target.ensure_packages(), vendor)
    shutil.copytree(shared, vendor / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    removed = strip(vendor) + strip_binaries(vendor, tool)
    return vendor, sorted(removed, key=lambda r: r.size, reverse=True)


def write_stamp(vendor: Path, target: Target) -> Path:
    """Say which runtime ``vendor`` was built and run for (chalicelib/packaging.py reads it)."""
    stamp = {"python": target.python, "architecture": target.architecture, "packages": pins()}
    path = vendor / VENDOR_STAMP
    path.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    return path
