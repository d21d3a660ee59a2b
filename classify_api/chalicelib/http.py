"""HTTP plumbing every route shares: the error type, JSON/HTML responses, the guard, the app class.

Every failure a request can trigger becomes an :class:`ApiError` before it leaves ``chalicelib``;
the JSON body is ``{"error": code, "message": sentence}``. Messages never carry file system paths
or exception dumps: they describe what the client sent and how to fix it.
"""

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

_log = logging.getLogger(__name__)
# Results depend on the uploaded body; caches along the way must not reuse them.
_NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    """A request that cannot be served, with the status and body the client should see."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def too_large(code: str, message: str) -> ApiError:
    return ApiError(413, code, message)


def model_unavailable(reason: str) -> ApiError:
    """503: the service has no usable model (a deployment problem, not the client's)."""
    return ApiError(503, "model_unavailable", reason)


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


class ThreadSafeChalice(Chalice):
    """Chalice keeps the request being handled in one attribute of the app, shared by all threads.

    Lambda sends one event at a time, but `chalice local` serves each connection on its own thread,
    and there two concurrent requests could each read the other's body: one client got another
    client's answer. Each thread keeps its own current request instead.
    """

    _requests = threading.local()

    @property
    def current_request(self) -> Request | None:
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request: Request | None) -> None:
        self._requests.request = request
