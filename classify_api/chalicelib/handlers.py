"""What each route does, as functions of chalice's request (app.py only wires them).

numpy, Pillow and onnxruntime are imported through the predictor on the first request, never when
app.py is imported: chalice imports it to package the app, on a machine that may not be able to
load the bundle's compiled libraries (another CPU architecture) and where they are not installed.
"""

import math
import platform
import re
import time
from collections.abc import Mapping
from typing import Any

from chalice.app import Request

from chalicelib import uploads
from chalicelib.http import (
    ApiError,
    RequestLog,
    Response,
    bad_request,
    guarded,
    html_response,
    json_response,
    shown,
)
from chalicelib.model_store import get_predictor, loaded_version
from chalicelib.page import page_html
from chalicelib.uploads import Upload, read_uploads

# What a decode failure answers: unreadable bytes 400, too many pixels 413, HEIC/AVIF 415.
_DECODE_STATUS = {"invalid_image": 400, "image_too_large": 413, "unsupported_image": 415}
_TOP = re.compile(r"[0-9]{1,6}")  # ASCII digits only: int() would also take "２" or " 2_0"
# ``reject``'s spellings, case aside; anything else is refused (a typo must not flip the answer).
_REJECT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
ROUTES = "GET / (the upload page), GET /health, POST /classify"


@guarded("/classify")
def classify(log: RequestLog, request: Request) -> Response:
    """POST /classify: one result; or, for a batch, ``{"count", "classified", "failed",
    "results"}`` with one result or ``{error, message}`` per file (status 200 whenever the batch
    itself could be read)."""
    body = request.raw_body or b""
    log.set(bytes=len(body), model_version=loaded_version())
    _refuse_unread_chunked_body(request.headers, body)
    query = request.query_params or {}
    query_top = _top(query.get("top"), "in the query string")
    query_reject = _reject(query.get("reject"), "in the query string")
    with log.phase("read"):
        batch = read_uploads(request.headers.get("content-type"), body)
    # The query string wins: when it has a value, the body's is not even read.
    top = query_top if query_top is not None else _top(batch.top, "in the body")
    reject = query_reject if query_reject is not None else _reject(batch.reject, "in the body")
    reject = True if reject is None else reject
    log.set(files=len(batch.items), top=top, reject=reject)
    with log.phase("model"):
        predictor = get_predictor()
    log.set(model_version=predictor.model_info["version"])
    if not batch.batch:
        result = _answer(predictor, batch.items[0], top, reject)
        if "error" in result:
            raise ApiError(result.pop("status"), result["error"], result["message"])
        log.result(result)
        return json_response(result)
    results = _answer_batch(log, predictor, batch.items, top, reject)
    failed = sum(1 for result in results.values() if "error" in result)
    return json_response(
        {
            "count": len(results),
            "classified": len(results) - failed,
            "failed": failed,
            "results": list(results.values()) if batch.as_list else results,
        }
    )


def _answer_batch(
    log: RequestLog, predictor: Any, items: list[Upload], top: int | None, reject: bool
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for index, item in enumerate(items):
        if index and time.monotonic() - started > uploads.BATCH_SECONDS:
            result: dict[str, Any] = {
                "error": "batch_too_large",
                "message": f"not classified: the request had run for over "
                f"{uploads.BATCH_SECONDS:.0f} s before this file ({index} of {len(items)} done); "
                "send it again in a smaller batch",
            }
        else:
            result = _answer(predictor, item, top, reject)
        if "error" in result:
            result.pop("status", None)
            log.file_error(result["error"])
        else:
            log.result(result)
        results[item.key] = result
    return results


def _answer(predictor: Any, item: Upload, top: int | None, reject: bool) -> dict[str, Any]:
    """A classification (``"known"`` says whether it is one of the classes; ``reject=False``
    keeps the closest class as the label), or ``{"error", "message", "status"}`` for an image
    that has none."""
    from shared.decode import DecodeError  # loaded with the predictor

    if item.error is not None:
        return {**item.error.to_body(), "status": item.error.status}
    try:
        return predictor.predict(item.data, top=top, reject=reject)
    except DecodeError as exc:
        return {"error": exc.code, "message": exc.message, "status": _DECODE_STATUS[exc.code]}


def _top(raw: object, where: str) -> int | None:
    """``top`` as sent (query string, multipart field or JSON), checked strictly."""
    if raw is None or raw == "":
        return None
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not _TOP.fullmatch(text) or int(text) < 1:
        raise bad_request(
            "invalid_parameter",
            f"top {where} must be a whole number from 1 up, written with the digits 0-9 "
            f"(like top=2), got {shown(raw)}",
        )
    return int(text)  # larger than the label count simply means every label


def _reject(raw: object, where: str) -> bool | None:
    """``reject`` as sent: true/false, 1/0 or yes/no in any case (a JSON boolean or 0/1 too);
    ``None`` when absent or empty (the default applies: rejection on)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in _REJECT:
        return _REJECT[raw.lower()]
    raise bad_request(
        "invalid_parameter",
        f"reject {where} must be true or false (also 1/0 or yes/no; reject=false answers the "
        f"closest class even for an image the model finds none of its classes), got {shown(raw)}",
    )


def _refuse_unread_chunked_body(headers: Mapping[str, str], body: bytes) -> None:
    """411 for a chunked upload that arrived empty: `chalice local` reads a body only by its
    Content-Length and leaves chunked ones unread (API Gateway de-chunks them itself)."""
    if body or "chunked" not in headers.get("transfer-encoding", "").lower():
        return
    raise ApiError(
        411,
        "length_required",
        "the body was sent in chunks (Transfer-Encoding: chunked) and this server read none of "
        "it: send it with a Content-Length header, e.g. curl --data-binary @photo.jpg or "
        "curl -F file=@photo.jpg (not curl -T - or a streamed body)",
        # The unread chunks are still on the connection: it must not carry another request.
        headers={"Connection": "close"},
    )


@guarded("/health")
def health(log: RequestLog, request: Request) -> Response:
    """GET /health: loads the model if needed, so it doubles as a warm-up call."""
    with log.phase("model"):
        predictor = get_predictor()
    # Already imported by the predictor; only their versions are read here.
    import numpy
    import onnxruntime

    from shared.decode import ALLOWED_FORMATS, MAX_PIXELS

    info = predictor.contract.info
    log.set(model_version=predictor.model_info["version"])
    return json_response(
        {
            "status": "ok",
            "model": {**predictor.model_info, "run_id": info.get("run_id")},
            "labels": list(predictor.labels),
            **_rejection(predictor.contract.rejection),
            "preprocess": predictor.spec.to_dict(),
            "load_ms": round(predictor.load_ms, 1),
            "limits": {
                "max_body_bytes": uploads.MAX_BODY_BYTES,
                "max_files": uploads.MAX_FILES,
                "max_pixels": MAX_PIXELS,
            },
            "accepts": list(uploads.SUPPORTED),
            "formats": list(ALLOWED_FORMATS),
            "runtime": {
                "python": platform.python_version(),
                "onnxruntime": onnxruntime.__version__,
                "numpy": numpy.__version__,
            },
        }
    )


def _rejection(rule: Any) -> dict[str, Any]:
    """/health's account of how the model answers "none of these": the rule and a sentence."""
    if rule is None:
        return {
            "rejection": None,
            "rejection_note": "this model was exported without a rejection rule: every answer "
            'is one of its classes ("known" is always true); re-export it with a current trainer '
            'to get "unknown" for images that are none of them',
        }
    score = (
        "top class probability"
        if rule.score == "max_probability"
        else "known_score (the model's own output)"
    )
    return {
        # Figures the trainer could not compute may be NaN in the metadata: null here (JSON).
        "rejection": _json_safe(rule.to_dict()),
        "rejection_note": f"an image whose {score} is below {rule.threshold:.6g} is none of the "
        f'classes: it is answered "known": false and "label": "unknown", with its "closest" '
        f"class and the probabilities still given (reject=false keeps the closest class as the "
        f"label); the threshold lets {rule.accept_rate * 100:.4g}% of the in-class validation "
        f"images through (method: {rule.method})",
    }


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


@guarded("/")
def index(log: RequestLog, request: Request) -> Response:
    """GET /: the upload page."""
    return html_response(page_html())


def method_not_allowed(route: str, allowed: tuple[str, ...]) -> Any:
    """The view for a route's other methods: 405 in our shape, with ``Allow``."""

    @guarded(route)
    def view(log: RequestLog, request: Request) -> Response:
        raise ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {route}; use {' or '.join(allowed)} "
            f"(this API has {ROUTES})",
            headers={"Allow": ", ".join(allowed)},
        )

    return view


@guarded("(unknown)")
def not_found(log: RequestLog, request: Request) -> Response:
    """Any other one-segment path (deeper ones are answered by API Gateway / chalice local)."""
    raise ApiError(404, "not_found", f"there is nothing at this path; this API has {ROUTES}")
