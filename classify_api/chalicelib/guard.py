"""The wrapper around every view: errors become JSON answers, every request ends with its log line."""

import functools
import logging
from collections.abc import Callable

from chalice import Response
from chalice.app import Request

from chalicelib.errors import ApiError
from chalicelib.request_log import RequestLog
from chalicelib.responses import error_response

_log = logging.getLogger(__name__)


def guarded(route: str) -> Callable[[Callable[..., Response]], Callable[[Request], Response]]:
    """Wrap a view ``view(log, request)`` into ``view(request)`` for app.py.

    :class:`ApiError` becomes its JSON body, anything else a bare 500 (the traceback goes to the
    log, the client only learns that the fault is ours); HEAD answers carry no body; every
    request ends with its :class:`RequestLog` line.
    """

    def decorate(view: Callable[..., Response]) -> Callable[[Request], Response]:
        @functools.wraps(view)
        def wrapper(request: Request) -> Response:
            log = RequestLog(route, request)
            error_code = None
            try:
                response = view(log, request)
            except ApiError as exc:
                error_code = exc.code
                response = error_response(exc)
            except Exception:  # noqa: BLE001 - last line of defence: never a stack trace to a client
                _log.exception("unhandled error in %s", view.__name__)
                error_code = "internal_error"
                response = error_response(
                    ApiError(500, error_code, "the server failed to handle this request")
                )
            if log.method == "HEAD":
                # A body after a HEAD answer's headers would be read as the next response on a
                # reused connection (chalice local writes whatever body it is given).
                response.body = ""
            response.headers["X-Request-Id"] = log.request_id
            log.write(response.status_code, error_code)
            return response

        return wrapper

    return decorate
