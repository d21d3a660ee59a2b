"""The one :class:`shared.predictor.Predictor` per container.

The session is built on the first request that needs it (never at import: `chalice package` and
`chalice deploy` import app.py with AWS_CHALICE_CLI_MODE set and have no model to load) and then
reused for the container's lifetime. A missing or broken model becomes a 503 that names what
chooses the model file and how to publish one; the path itself goes to the log only. The failure
is not cached, so publishing a model fixes a running `chalice local`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.errors import ApiError, model_unavailable
from shared.paths import MODEL_PATH_ENV, served_model_path

if TYPE_CHECKING:  # the predictor pulls in numpy and onnxruntime: imported on first request
    from shared.predictor import Predictor

PUBLISH = "`python -m trainer.export RUN_DIR --publish`"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
# The SKYCLASS_MODEL_PATH setting the predictor was loaded for, and the predictor.
_loaded: tuple[str, Predictor] | None = None


def get_predictor() -> Predictor:
    """The container's predictor, loading it on first use; raises a 503 :class:`ApiError`."""
    global _loaded
    loaded = _loaded
    # Every request asks; the common answer must not build and compare paths (tens of µs).
    if loaded is not None and loaded[0] == os.environ.get(MODEL_PATH_ENV, ""):
        return loaded[1]
    with _lock:
        setting = os.environ.get(MODEL_PATH_ENV, "")
        if _loaded is None or _loaded[0] != setting:
            _loaded = (setting, _load(served_model_path()))
        return _loaded[1]


def loaded_version() -> str | None:
    """The version of the model already loaded, if any (never loads one: for the request log)."""
    loaded = _loaded
    return loaded[1].model_info["version"] if loaded is not None else None


def _configured() -> bool:
    return bool(os.environ.get(MODEL_PATH_ENV, "").strip())


def _load(path: Path) -> Predictor:
    from shared.model_contract import ContractError
    from shared.predictor import Predictor

    try:
        predictor = Predictor.from_path(path)
    except FileNotFoundError:
        _log.error("no model at %s (%s=%r)", path, MODEL_PATH_ENV, os.environ.get(MODEL_PATH_ENV))
        raise model_unavailable(_missing()) from None
    except ContractError as exc:  # the model's own metadata, never a path: said as it is
        _log.exception("the model at %s breaks the skyclass contract", path)
        raise model_unavailable(f"{_which()} cannot be served: {exc}; {_fix()}") from None
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
        _log.exception("cannot load the model at %s", path)
        raise _unusable(exc) from None
    _log.info("loaded model %s from %s in %.0f ms", predictor.model_info, path, predictor.load_ms)
    return predictor


def _missing() -> str:
    if _configured():
        return (
            f"{MODEL_PATH_ENV} names a model file that does not exist (the path is in the "
            f"server's log): set it to an exported model.onnx, or unset it to serve the "
            f"published model ({PUBLISH}, then redeploy)"
        )
    return (
        f"no model has been published: run {PUBLISH} and redeploy, or set {MODEL_PATH_ENV} "
        "to an exported model.onnx"
    )


def _which() -> str:
    return f"the model {MODEL_PATH_ENV} names" if _configured() else "the published model"


def _fix() -> str:
    return f"re-export it with {PUBLISH}" + (
        f", or point {MODEL_PATH_ENV} at another exported model.onnx" if _configured() else ""
    )


def _unusable(exc: Exception) -> ApiError:
    return model_unavailable(f"{_which()} cannot be loaded ({type(exc).__name__}); {_fix()}")
