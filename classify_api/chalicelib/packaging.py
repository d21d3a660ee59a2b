"""Refuse to package a bundle that cannot run: ``chalice deploy``/``package`` stop with one line.

Chalice zips app.py, chalicelib/ and vendor/ for the Lambda runtime of the Python it runs under, on
the stage's ``lambda_architecture``, and imports app.py first. Without this check a zip missing the
model or the runtime packages, or built for another Python or CPU, deploys and then fails on its
first request. Standard library only at the top: when vendor/ is missing, not even ``shared`` is
importable (the bundle vendors it).
"""

import json
import sys

_COMMANDS = ("deploy", "package")
_FIX = "run scripts/deploy (it builds the bundle and deploys from .venv-deploy)"


def refuse_broken_package(argv: list[str]) -> None:
    """Raise ``SystemExit`` with one line when ``argv`` is a chalice packaging command that would
    ship a bundle this app cannot run on; return quietly otherwise (``chalice local`` included)."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if not words or words[0] not in _COMMANDS:
        return
    problem = packaging_problem(_stage(argv))
    if problem:
        raise SystemExit(f"chalice {words[0]}: {problem}")


def packaging_problem(stage: str) -> str | None:
    """Why packaging ``stage`` from this Python would ship a broken bundle, or None."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.version_info < (3, 12):
        return f"Lambda no longer accepts python{python} functions; {_FIX}"
    try:
        from shared.paths import APP_DIR, APP_MODEL, VENDOR_STAMP, stage_architecture
    except ImportError:
        return f"vendor/ holds no bundle built by scripts/build_bundle; {_FIX}"
    try:
        built = json.loads((APP_DIR / "vendor" / VENDOR_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"vendor/ holds no bundle built by scripts/build_bundle; {_FIX}"
    architecture = stage_architecture(APP_DIR, stage)
    if (built.get("python"), built.get("architecture")) != (python, architecture):
        return (
            f"vendor/ was built for python{built.get('python')} {built.get('architecture')}, "
            f"but stage {stage!r} deploys python{python} {architecture}; {_FIX}"
        )
    if not (APP_DIR / APP_MODEL).is_file():
        return (
            f"no model at {APP_MODEL}; run `python -m trainer.export RUN_DIR --publish`, "
            "then scripts/deploy"
        )
    return None


def _stage(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--stage" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--stage="):
            return arg.split("=", 1)[1]
    return "dev"
