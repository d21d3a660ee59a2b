"""What a /classify request may carry and how its body becomes images (still encoded).

Three packings are accepted: a raw image body (``image/*`` or ``application/octet-stream``),
``multipart/form-data`` with one or more file parts, and ``application/json`` with a base64
``"image"``. The Content-Type only says how the body is packed; the image format itself is sniffed
from the bytes by ``shared.decode``. Multipart is parsed here (Python 3.13 dropped ``cgi``), strictly.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from chalicelib.http import ApiError, bad_request, too_large

# -- limits -----------------------------------------------------------------------------------
# API Gateway hands Lambda binary bodies base64-encoded (4/3 growth) inside a JSON event, and a
# synchronous Lambda invocation is capped at 6 MB (6,291,456 bytes). 4,500,000 raw bytes become
# 6,000,000 base64 characters, which leaves ~290 kB for headers and the rest of the event. Bodies
# over this are refused with 413 by the app itself; much larger ones never reach it (API Gateway or
# Lambda answer 413/502 first). Through ``chalice local`` the same limit applies, so local behaviour
# matches the deployed one.
MAX_BODY_BYTES = 4_500_000

# Files per multipart request: each costs one decode + inference (~50 ms on one vCPU for a photo),
# so 16 stays far inside API Gateway's 29 s cut-off even for the largest allowed images.
MAX_FILES = 16

# Parts of any kind (text fields included) a multipart body may hold before it is refused.
MAX_PARTS = 64

# A multipart batch stops before its next file once this much time has passed. The costliest
# legal image (a 50 MP PNG of a few hundred kB) takes 1-4 s to decode, so 16 of them could run
# past API Gateway's 29 s cut-off; with this budget a request ends within ~15 s + one image, inside
# the 28 s Lambda timeout, with a clear 413 instead of a gateway timeout.
BATCH_SECONDS = 15.0

# -- media types ------------------------------------------------------------------------------
# Which request content types /classify accepts, and how a Content-Type header is read.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff")
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/form-data"
JSON = "application/json"

# Non-standard spellings some clients send for the same formats (e.g. image/jpg from older tools).
IMAGE_ALIASES = ("image/jpg", "image/pjpeg", "image/x-ms-bmp", "image/x-bmp")

RAW_TYPES = IMAGE_TYPES + IMAGE_ALIASES + (OCTET_STREAM,)
SUPPORTED = (*IMAGE_TYPES, OCTET_STREAM, MULTIPART, JSON)

# API Gateway accepts at most 25 binary media types.
_MAX_BINARY_TYPES = 25


def binary_types(defaults: list[str]) -> list[str]:
    """Chalice's default binary types plus every raw image type and multipart/form-data.

    API Gateway passes a body through untouched (base64 in the event) only when its Content-Type
    is a binary media type; any other body is treated as UTF-8 text and binary bytes get mangled.
    """
    merged = list(defaults)
    for media_type in (*RAW_TYPES, MULTIPART):
        if media_type not in merged:
            merged.append(media_type)
    if len(merged) > _MAX_BINARY_TYPES:
        raise ValueError(f"API Gateway allows {_MAX_BINARY_TYPES} binary types, got {len(merged)}")
    return merged


def parse_content_type(header: str | None) -> tuple[str, Message]:
    """``"Multipart/Form-Data; boundary=x"`` -> ``("multipart/form-data", parsed header)``.

    The media type is lower-cased with parameters dropped (``""`` when the header is missing);
    the returned :class:`Message` answers ``get_param(...)`` with quoting and RFC 2231 handled.
    """
    value = (header or "").strip()
    media_type = value.split(";", 1)[0].strip().lower()
    message = Message()
    message["content-type"] = value
    return media_type, message


def supported_list() -> str:
    return ", ".join(SUPPORTED)


# -- multipart/form-data (RFC 7578 / RFC 2046 section 5.1) -------------------------------------
# The body is split with ``bytes.find`` on ``CRLF--boundary`` (fast in C for a few megabytes,
# byte-exact for binary parts), and only each part's small header block goes through the stdlib
# ``email`` header parser, which handles quoting and RFC 2231 ``filename*=``. File names are data,
# never paths: they are only ever used as keys in the JSON response.
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


def parse_multipart(body: bytes, boundary: str | None, *, max_parts: int = 64) -> list[Part]:
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


# -- bodies -----------------------------------------------------------------------------------
_UNSUPPORTED_HINT = (
    "send the image as a raw body with its image Content-Type "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'), as multipart/form-data "
    '(curl -F file=@photo.jpg), or as JSON {"image": "<base64>"}'
)

_URLSAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class Upload:
    key: str  # how the result is labelled in a multi-file response
    data: bytes


@dataclass(frozen=True)
class Uploads:
    items: list[Upload]
    # True for multipart bodies with two or more files: the response is keyed per file.
    batch: bool


def read_uploads(content_type: str | None, body: bytes) -> Uploads:
    """Validate the body's size and packing and return its images (still encoded)."""
    media_type, header = parse_content_type(content_type)
    if media_type not in (*RAW_TYPES, MULTIPART, JSON):
        shown = f"Content-Type {media_type!r}" if media_type else "a missing Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{shown} is not supported; use one of {supported_list()}: {_UNSUPPORTED_HINT}",
        )
    if len(body) > MAX_BODY_BYTES:
        raise too_large(
            "payload_too_large",
            f"the request body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,} "
            "bytes (Lambda's 6 MB event cap after API Gateway's base64 encoding)",
        )
    if not body:
        raise bad_request("empty_body", f"the request body is empty: {_UNSUPPORTED_HINT}")
    if media_type == MULTIPART:
        return _from_multipart(body, header.get_param("boundary"))
    if media_type == JSON:
        return Uploads([Upload("image", _from_json(body))], batch=False)
    return Uploads([Upload("body", body)], batch=False)


def _from_multipart(body: bytes, boundary: object) -> Uploads:
    try:
        parts = parse_multipart(
            body, boundary if isinstance(boundary, str) else None, max_parts=MAX_PARTS
        )
    except MultipartError as exc:
        raise bad_request("invalid_multipart", exc.message) from None
    # Browsers send an empty, nameless file part for a file input left empty: not an upload.
    files = [p for p in parts if p.is_file and (p.data or p.filename)]
    if not files:
        raise bad_request(
            "no_file",
            "the multipart body has no file part; attach the image as a file field "
            "(curl -F file=@photo.jpg)",
        )
    if len(files) > MAX_FILES:
        raise too_large(
            "too_many_files",
            f"the request has {len(files)} files; at most {MAX_FILES} per request",
        )
    keys = _unique_keys(files)
    return Uploads([Upload(k, p.data) for k, p in zip(keys, files, strict=True)], len(files) > 1)


def _unique_keys(files: list[Part]) -> list[str]:
    """``field/filename`` (or whichever is present), with ``#2``, ``#3`` ... for repeats."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for index, part in enumerate(files, start=1):
        base = "/".join(x for x in (part.name, part.filename) if x) or f"part{index}"
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys


def _from_json(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise bad_request("invalid_json", "the body is not valid JSON") from None
    image = document.get("image") if isinstance(document, dict) else None
    if not isinstance(image, str):
        raise bad_request(
            "missing_image",
            'a JSON body must be an object with an "image" string holding the base64 image',
        )
    text = image.strip()
    if text.startswith("data:"):
        # A data URL, as FileReader.readAsDataURL produces: keep what follows ";base64,".
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise bad_request("invalid_base64", 'the "image" data URL is not base64-encoded')
    # base64 tools wrap lines (whitespace carries no data); URL-safe base64 uses - and _.
    compact = "".join(text.split()).translate(_URLSAFE)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_base64", 'the "image" field is not valid base64') from None
    if not data:
        raise bad_request("empty_body", 'the "image" field is empty')
    return data
