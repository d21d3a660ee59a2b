"""What a /classify request may carry and how its body becomes images (still encoded).

Three packings are accepted: a raw image body (``image/*`` or ``application/octet-stream``),
``multipart/form-data`` with one or more file parts, and ``application/json`` with a base64
``"image"`` or a batch of them in ``"images"``. The Content-Type only says how the body is packed;
the image format itself is sniffed from the bytes by ``shared.decode``. Multipart is parsed here
(Python 3.13 dropped ``cgi``), strictly, except that bare-LF line breaks are read as CRLF.

In a batch, an entry that cannot be used (not base64, a URL) does not fail the request: it becomes
that entry's error, beside the other entries' answers.
"""

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from chalicelib.http import ApiError, bad_request, shown, too_large

# -- limits -----------------------------------------------------------------------------------
# API Gateway hands Lambda binary bodies base64-encoded (4/3 growth) inside a JSON event, and a
# synchronous Lambda invocation is capped at 6 MB (6,291,456 bytes). 4,500,000 raw bytes become
# 6,000,000 base64 characters, which leaves ~290 kB for headers and the rest of the event. Bodies
# over this are refused with 413 by the app itself; much larger ones never reach it (API Gateway or
# Lambda answer 413/502 first). Through ``chalice local`` the same limit applies, so local behaviour
# matches the deployed one.
MAX_BODY_BYTES = 4_500_000

# Files per request (multipart parts or JSON "images" entries): each costs one decode + inference
# (~50 ms on one vCPU for a photo), so 16 stays far inside API Gateway's 29 s cut-off even for the
# largest allowed images.
MAX_FILES = 16

# Parts of any kind (text fields included) a multipart body may hold before it is refused.
MAX_PARTS = 64

# A batch stops before its next file once this much time has passed; the files left get an error
# entry each. The costliest legal image (a 50 MP PNG of a few hundred kB) takes 1-4 s to decode,
# so 16 of them could run past API Gateway's 29 s cut-off; with this budget a request ends within
# ~15 s + one image, inside the 28 s Lambda timeout, with every finished answer kept.
BATCH_SECONDS = 15.0

# -- media types ------------------------------------------------------------------------------
# Which request content types /classify accepts, and how a Content-Type header is read.
# The formats shared.decode reads (its ALLOWED_FORMATS), with their media types and the file
# extensions the upload page's picker offers. Kept here, not imported: shared.decode loads Pillow.
FORMATS = (
    ("JPEG", "image/jpeg", (".jpg", ".jpeg", ".jpe", ".jfif")),
    ("PNG", "image/png", (".png",)),
    ("WebP", "image/webp", (".webp",)),
    ("GIF", "image/gif", (".gif",)),
    ("BMP", "image/bmp", (".bmp",)),
    ("TIFF", "image/tiff", (".tif", ".tiff")),
)
IMAGE_TYPES = tuple(media_type for _, media_type, _ in FORMATS)
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/form-data"
JSON = "application/json"

# Non-standard spellings some clients send for the same formats (e.g. image/jpg from older tools).
IMAGE_ALIASES = ("image/jpg", "image/pjpeg", "image/x-ms-bmp", "image/x-bmp")

RAW_TYPES = IMAGE_TYPES + IMAGE_ALIASES + (OCTET_STREAM,)
SUPPORTED = (*IMAGE_TYPES, OCTET_STREAM, MULTIPART, JSON)

# Real image formats that are not decoded (docs/api.md, "Formats"): refused with what to do.
CONVERT_TYPES = {
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/heic-sequence": "HEIC",
    "image/heif-sequence": "HEIF",
    "image/avif": "AVIF",
}
CONVERT_HINT = (
    "convert it to JPEG and send it again (on an iPhone, Settings > Camera > Formats > Most "
    "Compatible makes the camera save JPEG)"
)

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
_LF = b"\n"
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
    return _printable(raw.replace("\\", "/").rsplit("/", 1)[-1])


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:_MAX_FILENAME_CHARS]


# -- bodies -----------------------------------------------------------------------------------
_UNSUPPORTED_HINT = (
    "send the image as a raw body with its image Content-Type "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'), as multipart/form-data "
    '(curl -F file=@photo.jpg), or as JSON {"image": "<base64>"}'
)
_NOT_FETCHED = (
    "URLs are not fetched: download the image and send its bytes "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg', or base64 in JSON)"
)

_URL = re.compile(r"(?i)^\s*(?:(?:https?|ftp|s3|gs|file)://|file:|www\.)")
_URLSAFE = str.maketrans("-_", "+/")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_BASE64_BAD_CHAR = re.compile(r"[^A-Za-z0-9+/]")


@dataclass(frozen=True)
class Upload:
    """One image of a request: its key in a batch answer, and its bytes or why it has none."""

    key: str
    data: bytes = b""
    error: ApiError | None = None


@dataclass(frozen=True)
class Uploads:
    items: list[Upload]
    # True for multipart bodies with two or more files and JSON "images": answered per file.
    batch: bool = False
    # JSON "images" as an array: the answer's "results" is an array in the same order.
    as_list: bool = False
    # The body's own "top" and "reject" (multipart fields or JSON keys), as sent; the query
    # string wins over both.
    top: object = None
    reject: object = None


def read_uploads(content_type: str | None, body: bytes) -> Uploads:
    """Validate the body's size and packing and return its images (still encoded)."""
    media_type, header = parse_content_type(content_type)
    if media_type in CONVERT_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{CONVERT_TYPES[media_type]} images are not supported (this service reads JPEG, "
            f"PNG, WebP, GIF, BMP and TIFF): {CONVERT_HINT}",
        )
    if media_type not in (*RAW_TYPES, MULTIPART, JSON):
        shown_type = f"Content-Type {shown(media_type)}" if media_type else "a missing Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{shown_type} is not supported; use one of {supported_list()}: {_UNSUPPORTED_HINT}",
        )
    if len(body) > MAX_BODY_BYTES:
        raise too_large("payload_too_large", _too_large_message(len(body), media_type == JSON))
    if not body:
        raise bad_request("empty_body", f"the request body is empty: {_UNSUPPORTED_HINT}")
    if media_type == MULTIPART:
        return _from_multipart(body, header.get_param("boundary"))
    if media_type == JSON:
        return _from_json(body)
    if _looks_like_url(body[:2048]):
        return Uploads([Upload("body", error=bad_request("invalid_image", _url_message("body")))])
    return Uploads([Upload("body", body)])


def _too_large_message(size: int, as_json: bool) -> str:
    message = (
        f"the request body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,} bytes: resize or "
        "compress the image (a JPEG of 4000x3000 pixels at quality 85 is 2-4 MB) and send it again"
    )
    if as_json:
        message += (
            "; base64 in JSON adds a third, so a raw or multipart upload carries larger images"
        )
    return message


def _looks_like_url(data: bytes | str) -> bool:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return bool(_URL.match(text))


def _url_message(where: str) -> str:
    return f"the {where} is a URL, not an image: {_NOT_FETCHED}"


def _from_multipart(body: bytes, boundary: object) -> Uploads:
    try:
        parts = parse_multipart(
            body, boundary if isinstance(boundary, str) else None, max_parts=MAX_PARTS
        )
    except MultipartError as exc:
        raise bad_request("invalid_multipart", exc.message) from None
    # Browsers send an empty, nameless file part for a file input left empty: not an upload.
    files = [p for p in parts if p.is_file and (p.data or p.filename)]
    fields = [p for p in parts if not p.is_file]
    if not files:
        hint = ""
        if any(_looks_like_url(p.data[:2048]) for p in fields):
            hint = f"; {_NOT_FETCHED}"
        raise bad_request(
            "no_file",
            "the multipart body has no file part; attach the image as a file field "
            f"(curl -F file=@photo.jpg){hint}",
        )
    if len(files) > MAX_FILES:
        raise too_large(
            "too_many_files",
            f"the request has {len(files)} files; at most {MAX_FILES} per request: "
            "send the rest in another request",
        )
    tops = [p.data.decode("utf-8", "replace") for p in fields if p.name == "top"]
    rejects = [p.data.decode("utf-8", "replace") for p in fields if p.name == "reject"]
    keys = _unique_keys(
        "/".join(x for x in (p.name, p.filename) if x) or f"part{i}"
        for i, p in enumerate(files, start=1)
    )
    uploads = [Upload(key, part.data) for key, part in zip(keys, files, strict=True)]
    return Uploads(
        uploads,
        batch=len(files) > 1,
        top=tops[0] if tops else None,
        reject=rejects[0] if rejects else None,
    )


def _unique_keys(bases: Iterable[str]) -> list[str]:
    """The keys as given, with ``#2``, ``#3`` ... for repeats."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for base in bases:
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys


def _from_json(body: bytes) -> Uploads:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise bad_request(
            "invalid_json", 'the body is not valid JSON: send {"image": "<base64>"}'
        ) from None
    if not isinstance(document, dict) or ("image" not in document and "images" not in document):
        raise bad_request("missing_image", _missing_image_message(document))
    if "image" in document and "images" in document:
        raise bad_request(
            "missing_image",
            'send either "image" (one base64 image) or "images" (several), not both',
        )
    top, reject = document.get("top"), document.get("reject")
    if "image" in document:
        return Uploads(
            [Upload("image", _base64_image(document["image"], '"image" field'))],
            top=top,
            reject=reject,
        )
    return _json_batch(document["images"], top, reject)


def _missing_image_message(document: object) -> str:
    message = (
        'a JSON body must be an object with an "image" string holding the base64 image, '
        'or "images": a list (or an object of names) of base64 images'
    )
    values = document.values() if isinstance(document, dict) else []
    if any(isinstance(v, str) and _looks_like_url(v) for v in values):
        message += f"; {_NOT_FETCHED}"
    return message


def _json_batch(images: object, top: object, reject: object) -> Uploads:
    if isinstance(images, list):
        keys, values = [str(i) for i in range(len(images))], images
    elif isinstance(images, dict):
        keys = _unique_keys(_printable(name) or "image" for name in images)
        values = list(images.values())
    else:
        raise bad_request(
            "missing_image",
            '"images" must be a list of base64 images, or an object of name: base64 image',
        )
    if not values:
        raise bad_request("missing_image", '"images" is empty: add at least one base64 image')
    if len(values) > MAX_FILES:
        raise too_large(
            "too_many_files",
            f'"images" has {len(values)} entries; at most {MAX_FILES} per request: '
            "send the rest in another request",
        )
    uploads = []
    for key, value in zip(keys, values, strict=True):
        try:
            uploads.append(Upload(key, _base64_image(value, "entry")))
        except ApiError as exc:
            uploads.append(Upload(key, error=exc))
    return Uploads(uploads, batch=True, as_list=isinstance(images, list), top=top, reject=reject)


def _base64_image(value: object, where: str) -> bytes:
    """The bytes of a base64 image: standard or URL-safe alphabet, padded or not, with or without
    a ``data:`` URL prefix, whitespace (line wrapping) ignored."""
    if not isinstance(value, str):
        raise bad_request("missing_image", f"the {where} must be a string holding the base64 image")
    text = value.strip()
    if _looks_like_url(text):
        raise bad_request("invalid_base64", _url_message(where))
    if text[:5].lower() == "data:":
        # A data URL, as FileReader.readAsDataURL produces: keep what follows ";base64,".
        head, _, text = text.partition(",")
        if not head.lower().endswith(";base64"):
            raise bad_request(
                "invalid_base64",
                f'the {where} is a data URL without ";base64,": '
                "put the base64-encoded image after data:image/...;base64,",
            )
        if _looks_like_url(text):
            raise bad_request("invalid_base64", _url_message(where))
    # base64 tools wrap lines (whitespace carries no data); URL-safe base64 uses - and _, and
    # many encoders (JavaScript, Go's RawStdEncoding) leave the = padding out.
    compact = "".join(text.split()).translate(_URLSAFE).rstrip("=")
    if not compact:
        raise bad_request("empty_body", f"the {where} is empty")
    if not _BASE64.fullmatch(compact):
        bad = _BASE64_BAD_CHAR.search(compact)
        char = bad.group() if bad else "?"
        raise bad_request(
            "invalid_base64",
            f"the {where} is not base64: it contains {shown(char)}, which base64 never does "
            "(encode the image file with base64, e.g. base64 -w0 photo.jpg)",
        )
    if len(compact) % 4 == 1:
        raise bad_request(
            "invalid_base64",
            f"the {where} is not complete base64 ({len(compact):,} characters, one too many or "
            "some missing): encode the whole image file again",
        )
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):  # unreachable after the checks above; kept as a guard
        raise bad_request("invalid_base64", f"the {where} is not valid base64") from None
