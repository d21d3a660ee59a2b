"""A small, strict ``multipart/form-data`` parser (RFC 7578 / RFC 2046 section 5.1).

Python 3.13 dropped ``cgi``; the stdlib ``email`` parser is line-based and lenient about where a
body ends. Here the body is split with ``bytes.find`` on ``CRLF--boundary`` (fast in C for a few
megabytes, byte-exact for binary parts), and only each part's small header block goes through the
``email`` header parser, which handles quoting and RFC 2231 ``filename*=``. Anything malformed
raises :class:`MultipartError` with a sentence fit for the client.

File names are data, never paths: they are only ever used as keys in the JSON response.
"""

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

_CRLF = b"\r\n"
_MAX_BOUNDARY = 70  # RFC 2046: 1 to 70 characters
_MAX_HEADER_BYTES = 16 * 1024
_MAX_FILENAME_CHARS = 255


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; ``message`` is meant for humans."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Part:
    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def is_file(self) -> bool:
        """A file upload: it has a filename, or a non-text type (clients that omit the name)."""
        if self.filename is not None:
            return True
        return self.content_type is not None and not self.content_type.startswith("text/")


def parse(body: bytes, boundary: str | None, *, max_parts: int = 64) -> list[Part]:
    """Split ``body`` into its parts, in order. The preamble and epilogue are ignored."""
    delimiter = _delimiter(boundary)
    if body.startswith(delimiter):
        pos = 0
    else:
        # Delimiters only count at the very start or right after a CRLF (RFC 2046).
        pos = body.find(_CRLF + delimiter)
        if pos < 0:
            raise MultipartError("the multipart body does not contain its boundary")
        pos += len(_CRLF)
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return parts  # the close delimiter
        line_end = body.find(_CRLF, pos)
        if line_end < 0:
            raise MultipartError("the multipart body is truncated (it ends inside a boundary line)")
        if body[pos:line_end].strip(b" \t"):
            raise MultipartError("a multipart boundary line has unexpected characters after it")
        start = line_end + len(_CRLF)
        end = body.find(_CRLF + delimiter, start)
        if end < 0:
            raise MultipartError(
                "the multipart body is truncated (its closing boundary is missing)"
            )
        if len(parts) >= max_parts:
            raise MultipartError(f"the multipart body has more than {max_parts} parts")
        parts.append(_parse_part(body[start:end], index=len(parts) + 1))
        pos = end + len(_CRLF)


def _delimiter(boundary: str | None) -> bytes:
    if not boundary:
        raise MultipartError(
            "the Content-Type header has no boundary parameter "
            "(let the client build the multipart body and its header)"
        )
    if len(boundary) > _MAX_BOUNDARY:
        raise MultipartError(f"the multipart boundary is longer than {_MAX_BOUNDARY} characters")
    try:
        return b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError("the multipart boundary must be ASCII") from None


def _parse_part(chunk: bytes, index: int) -> Part:
    if chunk.startswith(_CRLF):  # a part without headers
        return Part(name=None, filename=None, content_type=None, data=chunk[len(_CRLF) :])
    head_end = chunk.find(_CRLF + _CRLF)
    if head_end < 0 or head_end > _MAX_HEADER_BYTES:
        raise MultipartError(f"multipart part {index} has no complete header block")
    # Browsers send UTF-8 file names as raw bytes in the quoted string.
    headers = HeaderParser().parsestr(chunk[:head_end].decode("utf-8", errors="replace"))
    name = _param(headers, "content-disposition", "name")
    content_type = headers.get("content-type")
    return Part(
        name=name,
        filename=_filename(headers),
        content_type=content_type.split(";", 1)[0].strip().lower() if content_type else None,
        data=chunk[head_end + 2 * len(_CRLF) :],
    )


def _param(headers: Message, header: str, param: str) -> str | None:
    value = headers.get_param(param, header=header)
    if value is None or value is True:
        return None
    return collapse_rfc2231_value(value) if isinstance(value, tuple) else str(value)


def _filename(headers: Message) -> str | None:
    """The client's file name, reduced to its last path component (some send full paths)."""
    raw = headers.get_filename()
    if raw is None:
        return None
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in base if ch.isprintable())
    return printable[:_MAX_FILENAME_CHARS]
