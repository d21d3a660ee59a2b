"""Lay out an app folder the way ``chalice package`` wants it: model, ``vendor/`` and all.

``vendor/`` is copied by chalice to the root of the deployment zip, so the runtime packages and
the ``shared/`` contract land next to ``app.py`` exactly as on Lambda's ``sys.path``.
"""

import shutil
from pathlib import Path

import chalice

from bundler.strip import Removed, strip

MODEL_RELATIVE = Path("chalicelib") / "model" / "model.onnx"
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
    """Put ``model`` where the app loads it by default; with no model, the published one must be there."""
    destination = app_dir / MODEL_RELATIVE
    if model is not None and model.resolve() != destination.resolve():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, destination)
    if not destination.is_file():
        raise FileNotFoundError(
            f"no model at {destination}: publish one with `python -m trainer.export RUN_DIR --publish`"
            " or pass --model PATH with --out DIR"
        )
    return destination


def vendor_packages(app_dir: Path, packages: Path, shared: Path) -> tuple[Path, list[Removed]]:
    """Fill ``app_dir/vendor`` afresh from the runtime packages and ``shared/``, then strip it."""
    vendor = app_dir / "vendor"
    if vendor.exists():
        shutil.rmtree(vendor)
    shutil.copytree(packages, vendor)
    shutil.copytree(shared, vendor / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    return vendor, strip(vendor)


def zip_layout(app_dir: Path) -> dict[str, Path]:
    """Archive name -> file, as ``chalice package`` lays the zip out (see its packager's
    ``_iter_app_filenames``): chalice's runtime module, ``app.py``, ``chalicelib/`` and
    ``vendor/``'s contents at the root. Used to measure and run bundles for a runtime other
    than the local Python's, which chalice itself cannot package here."""
    chalice_dir = Path(chalice.__file__).parent
    layout = {
        "chalice/__init__.py": chalice_dir / "__init__.py",
        "chalice/app.py": chalice_dir / "app.py",
    }
    layout["app.py"] = app_dir / "app.py"
    for root, prefix in ((app_dir / "chalicelib", "chalicelib/"), (app_dir / "vendor", "")):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                layout[prefix + path.relative_to(root).as_posix()] = path
    return layout


def materialize(layout: dict[str, Path], folder: Path) -> Path:
    """Write ``layout`` into ``folder`` (what Lambda's /var/task would hold)."""
    for name, source in layout.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder
