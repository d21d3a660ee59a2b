"""Which request content types /classify accepts, and how a Content-Type header is read.

The Content-Type only says how the body is packed; the image format itself is sniffed from the
bytes by ``shared.decode``.
"""

from email.message import Message

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
