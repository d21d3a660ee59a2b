"""What each route does, as plain functions of the request's parts (app.py only wires them)."""

import platform
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from chalicelib import limits, media
from chalicelib.bodies import read_uploads
from chalicelib.errors import bad_request, from_decode_error, too_large
from chalicelib.model_store import get_predictor
from chalicelib.page import page_html
from chalicelib.responses import Response, guarded, html_response, json_response
from shared import DecodeError
from shared.decode import MAX_PIXELS


@guarded
def classify(content_type: str | None, body: bytes, query: Mapping[str, str] | None) -> Response:
    """POST /classify: one result, or ``{"results": {key: result}}`` for several files."""
    top = _top_param(query)
    uploads = read_uploads(content_type, body)
    predictor = get_predictor()
    results: dict[str, Any] = {}
    started = time.monotonic()
    for upload in uploads.items:
        if results and time.monotonic() - started > limits.BATCH_SECONDS:
            raise too_large(
                "batch_too_large",
                f"stopped after {len(results)} of {len(uploads.items)} files: the request took "
                f"over {limits.BATCH_SECONDS:.0f} s; send fewer or smaller images per request",
            )
        try:
            results[upload.key] = predictor.predict(upload.data, top=top)
        except DecodeError as exc:
            raise from_decode_error(exc, upload.key if uploads.batch else None) from None
    if not uploads.batch:
        return json_response(next(iter(results.values())))
    return json_response({"count": len(results), "results": results})


@guarded
def health() -> Response:
    """GET /health: loads the model if needed, so it doubles as a warm-up call."""
    predictor = get_predictor()
    import onnxruntime  # already imported by the predictor; only its version is read here

    info = predictor.contract.info
    return json_response(
        {
            "status": "ok",
            "model": {**predictor.model_info, "run_id": info.get("run_id")},
            "labels": list(predictor.labels),
            "preprocess": predictor.spec.to_dict(),
            "load_ms": round(predictor.load_ms, 1),
            "limits": {
                "max_body_bytes": limits.MAX_BODY_BYTES,
                "max_files": limits.MAX_FILES,
                "max_pixels": MAX_PIXELS,
            },
            "accepts": list(media.SUPPORTED),
            "runtime": {
                "python": platform.python_version(),
                "onnxruntime": onnxruntime.__version__,
                "numpy": np.__version__,
            },
        }
    )


@guarded
def index() -> Response:
    """GET /: the upload page."""
    return html_response(page_html())


def _top_param(query: Mapping[str, str] | None) -> int | None:
    raw = (query or {}).get("top")
    if raw is None or raw == "":
        return None
    try:
        top = int(raw)
    except ValueError:
        top = 0
    if top < 1:
        raise bad_request("invalid_parameter", f"top must be a positive integer, got {raw!r}")
    return top  # larger than the label count simply means every label
