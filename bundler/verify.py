"""Run the stripped bundle before it is zipped, then compile bytecode for what that run imported.

The run is a cold start as Lambda makes it: the target's Python, isolated, sees a folder laid out
like ``/var/task`` (vendored packages and ``shared/`` at the root, ``app.py``, ``chalicelib/``,
chalice's two runtime files), imports ``app`` and answers a JPEG, a multipart PNG and ``/health``,
then decodes every allowed format. A stripping rule that removed something live fails here, in the
build. On another CPU the run needs an emulated interpreter (:mod:`bundler.emulator`).

Lambda's ``/var/task`` is read-only, so a function that ships no bytecode compiles every module of
numpy, Pillow and onnxruntime on every cold start (about half of it, measured). The modules that
run imported are compiled by the target interpreter itself: vendored ones ``unchecked-hash`` (they
are rebuilt with each build, so the source check would be wasted reads), the app's own files
``checked-hash``, because an in-place build leaves them in ``classify_api/`` where a later edit
followed by a plain ``chalice deploy`` must not run stale bytecode.
"""

import base64
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bundler.emulator import interpreter_for
from bundler.isolated import run_json
from bundler.probe import PROBE, proxy_event
from bundler.runtime import DEPLOY_VENV, Target, deploy_interpreter

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# chalice package adds these two files of the deploy venv's chalice to the zip, nothing else.
CHALICE_FILES = ("__init__.py", "app.py")
_APP_OWNED = ("app.py", "chalicelib", "chalice")


class VerifyError(RuntimeError):
    """The stripped bundle did not import or answer; the message says what failed."""


@dataclass
class Verified:
    ran_under: str  # the interpreter that ran it, or why nothing ran
    compiled: int  # modules given bytecode


def chalice_source() -> Path:
    python = next((DEPLOY_VENV / "lib").glob("python3.*/site-packages/chalice"), None)
    if python is None:
        raise VerifyError("no chalice in .venv-deploy: run scripts/setup-deploy")
    return python


def _task_tree(app_dir: Path, vendor: Path, root: Path) -> Path:
    """``/var/task`` as links, so bytecode written through it lands where chalice zips it from."""
    task = root / "task"
    task.mkdir()
    for entry in vendor.iterdir():
        (task / entry.name).symlink_to(entry)
    (vendor / "__pycache__").mkdir(exist_ok=True)
    (task / "__pycache__").symlink_to(vendor / "__pycache__")  # app.py's, at the zip root
    (task / "app.py").symlink_to(app_dir / "app.py")
    (task / "chalicelib").symlink_to(app_dir / "chalicelib")
    chalice = task / "chalice"
    chalice.mkdir()
    (vendor / "chalice" / "__pycache__").mkdir(parents=True, exist_ok=True)
    (chalice / "__pycache__").symlink_to(vendor / "chalice" / "__pycache__")
    for name in CHALICE_FILES:
        (chalice / name).symlink_to(chalice_source() / name)
    return task


def _sample_images() -> dict[str, str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (260, 300, 3), dtype=np.uint8))
    out = {}
    for fmt in FORMATS:
        buffer = io.BytesIO()
        rgb.save(buffer, format=fmt)
        out[fmt] = base64.b64encode(buffer.getvalue()).decode()
    return out


def _request(images: dict[str, str]) -> dict:
    jpeg, png = base64.b64decode(images["JPEG"]), base64.b64decode(images["PNG"])
    boundary = "skyclass-build"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    events = [
        proxy_event("POST", "/classify", jpeg, {"Content-Type": "image/jpeg"}),
        proxy_event("POST", "/classify", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
        proxy_event("GET", "/health"),
    ]  # fmt: skip
    return {"events": events, "images": images, "loaded": True}


def _check(answer: dict) -> None:
    responses = answer["invoke"]["responses"]
    failed = [r for r in responses if r["statusCode"] != 200]
    if failed:
        body = str(failed[0].get("body"))[:300]
        raise VerifyError(f"the stripped bundle answered {failed[0]['statusCode']}: {body}")
    bad = {fmt: shape for fmt, shape in answer["decoded"].items() if shape != [260, 300, 3]}
    if bad:
        raise VerifyError(f"the stripped bundle's Pillow failed to decode {bad}")


def _pyc(task: Path, source: Path, python: str) -> Path:
    tag = "cpython-" + python.replace(".", "")
    return task / source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"


def _jobs(task: Path, sources: list[Path], python: str) -> list[list[str]]:
    jobs = []
    for relative in sources:
        mode = "checked-hash" if relative.parts[0] in _APP_OWNED else "unchecked-hash"
        shown = f"/var/task/{relative.as_posix()}"
        jobs.append([str(task / relative), str(_pyc(task, relative, python)), shown, mode])
    return jobs


def verify_and_compile(target: Target, app_dir: Path, vendor: Path) -> Verified:
    """Run the stripped bundle under ``target``'s Python, then compile what it imported.

    Without an interpreter for the target's CPU nothing can run: every module is compiled instead
    (bytecode does not depend on the CPU), and ``ran_under`` says that the bundle was not run.
    """
    python = interpreter_for(target)
    env = {"AWS_DEFAULT_REGION": "us-east-1"}
    with tempfile.TemporaryDirectory(prefix="skyclass-verify-") as tmp:
        task = _task_tree(app_dir, vendor, Path(tmp))
        if python is None:
            sources = [p.relative_to(task) for p in _all_sources(task)]
            ran_under = f"not run: no {target.machine} interpreter (python -m bundler.emulator)"
        else:
            request = _request(_sample_images())
            answer = run_json(python, PROBE, request, folders=[task], cwd=task, env=env)
            _check(answer)
            sources = [Path(m["file"]).relative_to(task) for m in answer["loaded"]]
            ran_under = f"python{target.python} {target.machine}" + (
                "" if target.native() else " (emulated)"
            )
        jobs = _jobs(task, sources, target.python)
        compiled = run_json(python or deploy_interpreter(), PROBE, {"compile": jobs})["compiled"]
    return Verified(ran_under, compiled)


def _all_sources(task: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(task, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.endswith(".dist-info")]
        found += [Path(folder) / f for f in files if f.endswith(".py")]
    return found
