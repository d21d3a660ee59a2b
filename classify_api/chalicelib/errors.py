"""The one error type every refused request becomes, and how a client's own values are quoted.

Every failure a request can trigger becomes an :class:`ApiError` before it leaves ``chalicelib``;
the JSON body is ``{"error": code, "message": sentence}``. Messages never carry file system paths
or exception dumps: they describe what the client sent and how to fix it, and quote the client's
own values only through :func:`shown` (cut short, so a long header cannot fill a message).
"""

from collections.abc import Mapping

_SHOWN_CHARS = 40


class ApiError(Exception):
    """A request that cannot be served, with the status and body the client should see."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def too_large(code: str, message: str) -> ApiError:
    return ApiError(413, code, message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", message)


def model_unavailable(reason: str) -> ApiError:
    """503: the service has no usable model (a deployment problem, not the client's)."""
    return ApiError(503, "model_unavailable", reason)


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """A client's value quoted for a message: ``'image/x-foo'``, cut to ``limit`` characters
    (marked with ``…``) so an 8 kB header cannot fill the answer."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)
