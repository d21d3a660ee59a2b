"""The one :class:`shared.predictor.Predictor` per container.

The session is built on the first request that needs it (never at import: `chalice package` and
`chalice deploy` import app.py with AWS_CHALICE_CLI_MODE set and have no model to load) and then
reused for the container's lifetime. A missing or broken model becomes a 503 that says how to
publish one; the failure is not cached, so publishing a model fixes a running `chalice local`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.http import ApiError, model_unavailable
from shared.paths import served_model_path

if TYPE_CHECKING:  # the predictor pulls in numpy and onnxruntime: imported on first request
    from shared.predictor import Predictor

# This package's parent: classify_api/ in a checkout, /var/task on Lambda.
APP_DIR = Path(__file__).resolve().parent.parent
PUBLISH_HINT = "run `python -m trainer.export RUN_DIR --publish` and redeploy"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: tuple[Path, Predictor] | None = None


def model_path() -> Path:
    return served_model_path(APP_DIR)


def get_predictor() -> Predictor:
    """The container's predictor, loading it on first use; raises a 503 :class:`ApiError`."""
    global _loaded
    path = model_path()
    with _lock:
        if _loaded is None or _loaded[0] != path:
            _loaded = (path, _load(path))
        return _loaded[1]


def loaded_version() -> str | None:
    """The version of the model already loaded, if any (never loads one: for the request log)."""
    loaded = _loaded
    return loaded[1].model_info["version"] if loaded is not None else None


def _load(path: Path) -> Predictor:
    from shared.model_contract import ContractError
    from shared.predictor import Predictor

    # The path goes to the log (CloudWatch), never into the response body.
    try:
        predictor = Predictor.from_path(path)
    except FileNotFoundError:
        _log.error("no model at %s", path)
        raise model_unavailable(f"no model has been published; {PUBLISH_HINT}") from None
    except ContractError as exc:  # the model's own metadata, never a path: said as it is
        _log.exception("the model at %s breaks the skyclass contract", path)
        raise model_unavailable(
            f"the published model cannot be served: {exc}; re-export it: {PUBLISH_HINT}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
        _log.exception("cannot load the model at %s", path)
        raise _unusable(exc) from None
    _log.info("loaded model %s from %s in %.0f ms", predictor.model_info, path, predictor.load_ms)
    return predictor


def _unusable(exc: Exception) -> ApiError:
    return model_unavailable(
        f"the published model cannot be loaded ({type(exc).__name__}); re-export it: {PUBLISH_HINT}"
    )
