"""What each route does, as plain functions of the request's parts (app.py only wires them).

numpy, Pillow and onnxruntime are imported through the predictor on the first request, never when
app.py is imported: chalice imports it to package the app, on a machine that may not be able to
load the bundle's compiled libraries (another CPU architecture) and where they are not installed.
"""

import platform
import time
from collections.abc import Mapping
from typing import Any

from chalicelib import uploads
from chalicelib.http import (
    ApiError,
    Response,
    bad_request,
    guarded,
    html_response,
    json_response,
    too_large,
)
from chalicelib.model_store import get_predictor
from chalicelib.page import page_html
from chalicelib.uploads import read_uploads


@guarded
def classify(content_type: str | None, body: bytes, query: Mapping[str, str] | None) -> Response:
    """POST /classify: one result, or ``{"results": {key: result}}`` for several files."""
    from shared.decode import DecodeError, ImageTooLargeError  # loaded with the predictor

    top = _top_param(query)
    batch = read_uploads(content_type, body)
    predictor = get_predictor()
    results: dict[str, Any] = {}
    started = time.monotonic()
    for upload in batch.items:
        if results and time.monotonic() - started > uploads.BATCH_SECONDS:
            raise too_large(
                "batch_too_large",
                f"stopped after {len(results)} of {len(batch.items)} files: the request took "
                f"over {uploads.BATCH_SECONDS:.0f} s; send fewer or smaller images per request",
            )
        try:
            results[upload.key] = predictor.predict(upload.data, top=top)
        except DecodeError as exc:
            # 413 for too many pixels, 400 for anything unreadable.
            status = 413 if isinstance(exc, ImageTooLargeError) else 400
            where = f"part {upload.key!r}: " if batch.batch else ""
            raise ApiError(status, exc.code, f"{where}{exc.message}") from None
    if not batch.batch:
        return json_response(next(iter(results.values())))
    return json_response({"count": len(results), "results": results})


@guarded
def health() -> Response:
    """GET /health: loads the model if needed, so it doubles as a warm-up call."""
    predictor = get_predictor()
    # Already imported by the predictor; only their versions are read here.
    import numpy
    import onnxruntime

    from shared.decode import MAX_PIXELS

    info = predictor.contract.info
    return json_response(
        {
            "status": "ok",
            "model": {**predictor.model_info, "run_id": info.get("run_id")},
            "labels": list(predictor.labels),
            "preprocess": predictor.spec.to_dict(),
            "load_ms": round(predictor.load_ms, 1),
            "limits": {
                "max_body_bytes": uploads.MAX_BODY_BYTES,
                "max_files": uploads.MAX_FILES,
                "max_pixels": MAX_PIXELS,
            },
            "accepts": list(uploads.SUPPORTED),
            "runtime": {
                "python": platform.python_version(),
                "onnxruntime": onnxruntime.__version__,
                "numpy": numpy.__version__,
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
