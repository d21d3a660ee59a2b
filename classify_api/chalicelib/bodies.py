"""Request body -> the images it carries, dispatched on Content-Type.

Three forms are accepted: a raw image body (``image/*`` or ``application/octet-stream``),
``multipart/form-data`` with one or more file parts, and ``application/json`` with a base64
``"image"``. The Content-Type only says how the body is packed; the image format itself is sniffed
from the bytes by ``shared.decode``.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from chalicelib import limits, media, multipart
from chalicelib.errors import ApiError, bad_request, too_large

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
    media_type, header = media.parse_content_type(content_type)
    if media_type not in (*media.RAW_TYPES, media.MULTIPART, media.JSON):
        shown = f"Content-Type {media_type!r}" if media_type else "a missing Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{shown} is not supported; use one of {media.supported_list()}: {_UNSUPPORTED_HINT}",
        )
    if len(body) > limits.MAX_BODY_BYTES:
        raise too_large(
            "payload_too_large",
            f"the request body is {len(body):,} bytes; the limit is {limits.MAX_BODY_BYTES:,} "
            "bytes (Lambda's 6 MB event cap after API Gateway's base64 encoding)",
        )
    if not body:
        raise bad_request("empty_body", f"the request body is empty: {_UNSUPPORTED_HINT}")
    if media_type == media.MULTIPART:
        return _from_multipart(body, header.get_param("boundary"))
    if media_type == media.JSON:
        return Uploads([Upload("image", _from_json(body))], batch=False)
    return Uploads([Upload("body", body)], batch=False)


def _from_multipart(body: bytes, boundary: object) -> Uploads:
    try:
        parts = multipart.parse(
            body, boundary if isinstance(boundary, str) else None, max_parts=limits.MAX_PARTS
        )
    except multipart.MultipartError as exc:
        raise bad_request("invalid_multipart", exc.message) from None
    # Browsers send an empty, nameless file part for a file input left empty: not an upload.
    files = [p for p in parts if p.is_file and (p.data or p.filename)]
    if not files:
        raise bad_request(
            "no_file",
            "the multipart body has no file part; attach the image as a file field "
            "(curl -F file=@photo.jpg)",
        )
    if len(files) > limits.MAX_FILES:
        raise too_large(
            "too_many_files",
            f"the request has {len(files)} files; at most {limits.MAX_FILES} per request",
        )
    keys = _unique_keys(files)
    return Uploads([Upload(k, p.data) for k, p in zip(keys, files, strict=True)], len(files) > 1)


def _unique_keys(files: list[multipart.Part]) -> list[str]:
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
