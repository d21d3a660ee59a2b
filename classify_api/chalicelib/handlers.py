"""What each route does, as functions of chalice's request (app.py only wires them).

numpy, Pillow and onnxruntime are imported through the predictor on the first request, never when
app.py is imported: chalice imports it to package the app, on a machine that may not be able to
load the bundle's compiled libraries (another CPU architecture) and where they are not installed.
"""

import time
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib import limits
from chalicelib.errors import ApiError
from chalicelib.framing import check_framing
from chalicelib.guard import guarded
from chalicelib.health import health_document
from chalicelib.model_store import get_predictor, loaded_version
from chalicelib.page import page_html
from chalicelib.parameters import reject_from, top_from
from chalicelib.request_log import RequestLog
from chalicelib.responses import html_response, json_response
from chalicelib.uploads import Upload, read_uploads

# What a decode failure answers: unreadable bytes 400, too many pixels 413, HEIC/AVIF 415.
_DECODE_STATUS = {"invalid_image": 400, "image_too_large": 413, "unsupported_image": 415}
ROUTES = "GET / (the upload page), GET /health, POST /classify"


@guarded("/classify")
def classify(log: RequestLog, request: Request) -> Response:
    """POST /classify: one result; or, for a batch, ``{"count", "classified", "failed",
    "results"}`` with one result or ``{error, message}`` per file (status 200 whenever the batch
    itself could be read)."""
    body = request.raw_body or b""
    log.set(bytes=len(body), model_version=loaded_version())
    check_framing(request.headers, request.to_original_event(), body)
    query = request.query_params or {}
    query_top = top_from(query.get("top"), "in the query string")
    query_reject = reject_from(query.get("reject"), "in the query string")
    with log.phase("read"):
        batch = read_uploads(request.headers.get("content-type"), body)
    # The query string wins: when it has a value, the body's is not even read.
    top = query_top if query_top is not None else top_from(batch.top, "in the body")
    reject = query_reject if query_reject is not None else reject_from(batch.reject, "in the body")
    reject = True if reject is None else reject
    with log.phase("model"):
        predictor = get_predictor()
    # Above the label count, top means every label: the log says what was applied.
    top = None if top is None else min(top, len(predictor.labels))
    log.set(files=len(batch.items), top=top, reject=reject)
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
        if index and time.monotonic() - started > limits.BATCH_SECONDS:
            result: dict[str, Any] = {
                "error": "batch_too_large",
                "message": f"not classified: the request had run for over "
                f"{limits.BATCH_SECONDS:.0f} s before this file ({index} of {len(items)} done); "
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


@guarded("/health")
def health(log: RequestLog, request: Request) -> Response:
    """GET /health: loads the model if needed, so it doubles as a warm-up call."""
    with log.phase("model"):
        predictor = get_predictor()
    log.set(model_version=predictor.model_info["version"])
    return json_response(health_document(predictor))


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
