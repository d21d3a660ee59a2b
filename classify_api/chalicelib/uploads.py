"""How a /classify body becomes images (still encoded), whatever its packing.

Three packings are accepted: a raw image body (``image/*`` or ``application/octet-stream``),
``multipart/form-data`` with one or more file parts, and ``application/json`` with a base64
``"image"`` or a batch of them in ``"images"``. In a batch, an entry that cannot be used (not
base64, a URL) does not fail the request: it becomes that entry's error, beside the other entries'
answers.
"""

import json
from dataclasses import dataclass

from chalicelib import limits
from chalicelib.base64_images import base64_image
from chalicelib.batch_keys import printable, unique_keys
from chalicelib.errors import ApiError, bad_request, shown, too_large, unsupported_media_type
from chalicelib.media_types import (
    CONVERT_HINT,
    CONVERT_TYPES,
    JSON,
    MULTIPART,
    RAW_TYPES,
    parse_content_type,
    supported_list,
)
from chalicelib.multipart import MultipartError, parse_multipart
from chalicelib.urls import NOT_FETCHED, looks_like_url, url_message

_UNSUPPORTED_HINT = (
    "send the image as a raw body with its image Content-Type "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'), as multipart/form-data "
    '(curl -F file=@photo.jpg), or as JSON {"image": "<base64>"}'
)


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
        raise unsupported_media_type(
            f"{CONVERT_TYPES[media_type]} images are not supported (this service reads JPEG, "
            f"PNG, WebP, GIF, BMP and TIFF): {CONVERT_HINT}"
        )
    if media_type not in (*RAW_TYPES, MULTIPART, JSON):
        shown_type = f"Content-Type {shown(media_type)}" if media_type else "a missing Content-Type"
        raise unsupported_media_type(
            f"{shown_type} is not supported; use one of {supported_list()}: {_UNSUPPORTED_HINT}"
        )
    if len(body) > limits.MAX_BODY_BYTES:
        raise too_large("payload_too_large", _too_large_message(len(body), media_type == JSON))
    if not body:
        raise bad_request("empty_body", f"the request body is empty: {_UNSUPPORTED_HINT}")
    if media_type == MULTIPART:
        return _from_multipart(body, header.get_param("boundary"))
    if media_type == JSON:
        return _from_json(body)
    if looks_like_url(body[:2048]):
        return Uploads([Upload("body", error=bad_request("invalid_image", url_message("body")))])
    return Uploads([Upload("body", body)])


def _too_large_message(size: int, as_json: bool) -> str:
    message = (
        f"the request body is {size:,} bytes; the limit is {limits.MAX_BODY_BYTES:,} bytes: "
        "resize or compress the image (a JPEG of 4000x3000 pixels at quality 85 is 2-4 MB) and "
        "send it again"
    )
    if as_json:
        message += (
            "; base64 in JSON adds a third, so a raw or multipart upload carries larger images"
        )
    return message


def _from_multipart(body: bytes, boundary: object) -> Uploads:
    try:
        parts = parse_multipart(
            body, boundary if isinstance(boundary, str) else None, max_parts=limits.MAX_PARTS
        )
    except MultipartError as exc:
        raise bad_request("invalid_multipart", exc.message) from None
    # Browsers send an empty, nameless file part for a file input left empty: not an upload.
    files = [p for p in parts if p.is_file and (p.data or p.filename)]
    fields = [p for p in parts if not p.is_file]
    if not files:
        hint = ""
        if any(looks_like_url(p.data[:2048]) for p in fields):
            hint = f"; {NOT_FETCHED}"
        raise bad_request(
            "no_file",
            "the multipart body has no file part; attach the image as a file field "
            f"(curl -F file=@photo.jpg){hint}",
        )
    if len(files) > limits.MAX_FILES:
        raise too_large(
            "too_many_files",
            f"the request has {len(files)} files; at most {limits.MAX_FILES} per request: "
            "send the rest in another request",
        )
    tops = [p.data.decode("utf-8", "replace") for p in fields if p.name == "top"]
    rejects = [p.data.decode("utf-8", "replace") for p in fields if p.name == "reject"]
    keys = unique_keys(
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
            [Upload("image", base64_image(document["image"], '"image" field'))],
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
    if any(isinstance(v, str) and looks_like_url(v) for v in values):
        message += f"; {NOT_FETCHED}"
    return message


def _json_batch(images: object, top: object, reject: object) -> Uploads:
    if isinstance(images, list):
        keys, values = [str(i) for i in range(len(images))], images
    elif isinstance(images, dict):
        keys = unique_keys(printable(name) or "image" for name in images)
        values = list(images.values())
    else:
        raise bad_request(
            "missing_image",
            '"images" must be a list of base64 images, or an object of name: base64 image',
        )
    if not values:
        raise bad_request("missing_image", '"images" is empty: add at least one base64 image')
    if len(values) > limits.MAX_FILES:
        raise too_large(
            "too_many_files",
            f'"images" has {len(values)} entries; at most {limits.MAX_FILES} per request: '
            "send the rest in another request",
        )
    uploads = []
    for key, value in zip(keys, values, strict=True):
        try:
            uploads.append(Upload(key, base64_image(value, "entry")))
        except ApiError as exc:
            uploads.append(Upload(key, error=exc))
    return Uploads(uploads, batch=True, as_list=isinstance(images, list), top=top, reject=reject)
