"""multipart/form-data (RFC 7578 / RFC 2046 section 5.1): a body split into its parts.

The body is split with ``bytes.find`` on ``CRLF--boundary`` (fast in C for a few megabytes,
byte-exact for binary parts), and only each part's small header block goes through the stdlib
``email`` header parser, which handles quoting and RFC 2231 ``filename*=``. Strict, except that
bare-LF line breaks (hand-written bodies, some scripts) are read as CRLF: python-multipart, the
ecosystem's parser, refuses those (docs/deploy.md, "Libraries considered"). Imports nothing from
chalice: parts in, parts out.
"""

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from chalicelib.batch_keys import printable

# The body is split with ``bytes.find`` on ``CRLF--boundary`` (fast in C for a few megabytes,
# byte-exact for binary parts), and only each part's small header block goes through the stdlib
# ``email`` header parser, which handles quoting and RFC 2231 ``filename*=``. File names are data,
# never paths: they are only ever used as keys in the JSON response.
_CRLF = b"\r\n"
_LF = b"\n"
_MAX_BOUNDARY = 70  # RFC 2046: 1 to 70 characters
_MAX_HEADER_BYTES = 16 * 1024


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


def parse_multipart(body: bytes, boundary: str | None, *, max_parts: int = 64) -> list[Part]:
    """Split ``body`` into its parts, in order. The preamble and epilogue are ignored.

    Line breaks are CRLF, as RFC 2046 requires; a body whose first boundary line ends in a bare
    LF (hand-written bodies, some scripts) is read with LF line breaks throughout.
    """
    delimiter = _delimiter(boundary)
    newline = _newline(body, delimiter)
    if body.startswith(delimiter):
        pos = 0
    else:
        # Delimiters only count at the very start or right after a line break (RFC 2046).
        pos = body.find(newline + delimiter)
        if pos < 0:
            raise MultipartError("the multipart body does not contain its boundary")
        pos += len(newline)
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return parts  # the close delimiter
        line_end = body.find(newline, pos)
        if line_end < 0:
            raise MultipartError(
                "the multipart body is truncated (it ends inside a boundary line); "
                "send the whole body"
            )
        if body[pos:line_end].strip(b" \t"):
            raise MultipartError("a multipart boundary line has unexpected characters after it")
        start = line_end + len(newline)
        end = body.find(newline + delimiter, start)
        if end < 0:
            raise MultipartError(
                "the multipart body is truncated (its closing boundary is missing); "
                "send the whole body"
            )
        if len(parts) >= max_parts:
            raise MultipartError(f"the multipart body has more than {max_parts} parts")
        parts.append(_parse_part(body[start:end], len(parts) + 1, newline))
        pos = end + len(newline)


def _newline(body: bytes, delimiter: bytes) -> bytes:
    """CRLF, or LF when the first delimiter line ends with a bare LF."""
    at = 0 if body.startswith(delimiter) else body.find(delimiter)
    if at < 0:
        return _CRLF
    line = body[at + len(delimiter) : at + len(delimiter) + 256]
    if line.startswith(b"--"):
        return _CRLF
    stripped = line.lstrip(b" \t")
    return _LF if stripped.startswith(_LF) else _CRLF


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


def _parse_part(chunk: bytes, index: int, newline: bytes) -> Part:
    if chunk.startswith(newline):  # a part without headers
        return Part(name=None, filename=None, content_type=None, data=chunk[len(newline) :])
    head_end = chunk.find(newline + newline)
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
        data=chunk[head_end + 2 * len(newline) :],
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
    return printable(raw.replace("\\", "/").rsplit("/", 1)[-1])
