"""The errors a client can cause, each with an HTTP status, a stable code and a human sentence.

Every failure a request can trigger is turned into an :class:`ApiError` before it leaves
``chalicelib``; the JSON body is ``{"error": code, "message": sentence}``. Messages never carry
file system paths or exception dumps: they describe what the client sent and how to fix it.
"""

from shared import DecodeError, ImageTooLargeError


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


def from_decode_error(exc: DecodeError, part: str | None = None) -> ApiError:
    """``shared.decode``'s errors: 413 for too many pixels, 400 for anything unreadable."""
    status = 413 if isinstance(exc, ImageTooLargeError) else 400
    where = f"part {part!r}: " if part else ""
    return ApiError(status, exc.code, f"{where}{exc.message}")


def model_unavailable(reason: str) -> ApiError:
    """503: the service has no usable model (a deployment problem, not the client's)."""
    return ApiError(503, "model_unavailable", reason)
