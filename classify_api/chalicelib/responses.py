"""JSON and HTML responses, and the guard that keeps every failure a JSON error."""

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.errors import ApiError

_log = logging.getLogger(__name__)
# Results depend on the uploaded body; caches along the way must not reuse them.
_NO_STORE = {"Cache-Control": "no-store"}


def json_response(payload: Any, status: int = 200) -> Response:
    # allow_nan=False: NaN is not JSON; if it ever appeared, failing loudly beats a broken body.
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **_NO_STORE},
    )


def error_response(error: ApiError) -> Response:
    return json_response(error.to_body(), status=error.status)


def html_response(html: str) -> Response:
    return Response(
        body=html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=300"},
    )


def guarded(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn :class:`ApiError` into its JSON body and anything else into a bare 500.

    The traceback goes to the log (CloudWatch); the client only sees that the fault is ours.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ApiError as exc:
            return error_response(exc)
        except Exception:  # noqa: BLE001 - last line of defence: never a stack trace to a client
            _log.exception("unhandled error in %s", view.__name__)
            return error_response(
                ApiError(500, "internal_error", "the server failed to handle this request")
            )

    return wrapper
