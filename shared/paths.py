"""Where things are: the app folder, the served model and the repository.

The Chalice app loads its model from ``chalicelib/model/model.onnx`` relative to the app folder:
``classify_api/`` in a checkout, ``/var/task`` on Lambda. The trainer publishes there, the bundler
places the model there, and ``SKYCLASS_MODEL_PATH`` overrides it for local serving.
"""

import json
import os
from pathlib import Path, PurePosixPath

# Relative to the Chalice app folder, the same in the checkout and in the deployment zip.
APP_MODEL = PurePosixPath("chalicelib/model/model.onnx")
MODEL_PATH_ENV = "SKYCLASS_MODEL_PATH"

# The folder that holds shared/: the repository root in a checkout. The bundler vendors shared/
# into the app folder's vendor/, which chalice copies to the zip's root: there it is /var/task.
REPO = Path(__file__).resolve().parent.parent


def _app_dir(home: Path) -> Path:
    """The Chalice app folder (the one holding app.py and chalicelib/), from where shared/ is."""
    if (home / "app.py").is_file():
        return home  # the deployment zip (or its unzipped copy): shared/ beside app.py
    if home.name == "vendor":
        return home.parent  # an app folder prepared by the bundler: <app>/vendor/shared
    return home / "classify_api"  # a checkout


# The one definition of the app folder: the trainer publishes into it, the bundler builds from it,
# and chalicelib (which imports this vendored copy inside the zip) loads its model from it.
APP_DIR = _app_dir(REPO)
PUBLISHED_MODEL = APP_DIR / APP_MODEL


def served_model_path(app_dir: Path = APP_DIR) -> Path:
    """The model the app in ``app_dir`` serves: ``$SKYCLASS_MODEL_PATH`` or its published model."""
    configured = os.environ.get(MODEL_PATH_ENV, "").strip()
    return Path(configured) if configured else app_dir / APP_MODEL


# Written by the bundler into the app's vendor/ (so at the zip's root): which runtime it was built
# for. The app reads it when chalice packages it, and /health reports it.
VENDOR_STAMP = "skyclass_bundle.json"


def stage_architecture(app_dir: Path, stage: str = "dev") -> str:
    """The stage's ``lambda_architecture`` in ``.chalice/config.json``, as chalice resolves it
    (the stage's own value, else the top-level one, else ``x86_64``)."""
    config = json.loads((app_dir / ".chalice" / "config.json").read_text(encoding="utf-8"))
    stage_config = config.get("stages", {}).get(stage, {})
    return str(stage_config.get("lambda_architecture", config.get("lambda_architecture", "x86_64")))
