"""Bytes -> uint8 RGB array, the only way images enter the trainer or the API.

Policy (the same for every caller, so training and serving see the same pixels):

* Formats: JPEG (and MPO, what phones write), PNG, WebP, GIF, BMP, TIFF. Anything else is refused;
  HEIC/HEIF and AVIF are recognised and refused with advice to convert them (their decoders would
  cost the Lambda zip 1.4-5.4 MiB: docs/api.md, "Formats").
* The first frame of an animation is used.
* EXIF orientation (1-8) is applied, so a portrait phone photo is portrait.
* Every mode becomes RGB the same way: transparency is composited over white; 16/32-bit
  grayscale is scaled to 8 bits (value / 257, rounded); palette, CMYK, YCbCr and bilevel images go
  through Pillow's own conversion.
* Decompression bombs: at most ``MAX_PIXELS`` (50 megapixels, enough for 48/50 MP phone
  sensors; 150 MB as RGB) are ever decoded, and that one limit is the only one a message names.
  For JPEG it applies after draft-mode scaling, so a 108 MP photo that decodes at 1/8 scale is
  fine, while a 65000x65000 header is not.
* JPEGs are decoded in draft mode at the smallest 1/2, 1/4 or 1/8 scale whose shorter side still
  reaches ``min_short_side`` (the resize target), which makes a 12 MP photo ~10x cheaper, but only
  at a scale where the result equals what the upright image would give (see ``_draft_scale``).
* A JPEG whose only fault is a missing end marker (what browsers show anyway) is decoded; one that
  ends part-way through its pixels is refused.
"""

import io
import re
import warnings

import numpy as np
from PIL import (  # noqa: F401 - importing a plugin registers its format for Image.open
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

MAX_PIXELS = 50_000_000
# MPO (multi-picture JPEG from phones) is opened by the JPEG plugin and reports format "MPO".
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"

# Pillow's own bomb guard (DecompressionBombError above ~179 MP) would refuse before draft scaling
# and in its own words, a second limit clients would see. Ours below is checked on every image
# before any pixel is decoded, so Pillow's is switched off rather than duplicated.
Image.MAX_IMAGE_PIXELS = None

_GRAY_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_WHITE = (255, 255, 255, 255)
_ORIENTATION_TAG = 0x0112

# EXIF orientation -> the transpose that shows the stored pixels upright, and which stored axes
# that transpose reverses ("x": columns run right to left afterwards, "y": rows bottom to top).
_ORIENTATIONS = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, "x"),
    3: (Image.Transpose.ROTATE_180, "xy"),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, "y"),
    5: (Image.Transpose.TRANSPOSE, ""),
    6: (Image.Transpose.ROTATE_270, "y"),
    7: (Image.Transpose.TRANSVERSE, "xy"),
    8: (Image.Transpose.ROTATE_90, "x"),
}

_CONVERT = "convert it to JPEG or PNG and send it again"
# ISO-BMFF ``ftyp`` brands: the container of HEIC (iPhone photos since iOS 11) and AVIF.
_AVIF_BRANDS = (b"avif", b"avis")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1")
# Signatures of the accepted formats: bytes that start like one but do not open are damaged.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_JPEG_EOI = b"\xff\xd9"
# Inside a JPEG scan a 0xFF byte is followed by 0x00 (stuffing), 0xD0-0xD7 (restart) or 0xFF
# (fill); anything else is a marker: the scan is over.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Two padding patterns with different bits: a JPEG whose last scan was complete decodes the same
# with either (the padding is never read as pixels); one cut mid-scan decodes differently.
_PADDINGS = (b"\x55" * 64, b"\xaa" * 64)


class DecodeError(ValueError):
    """The bytes are not an image this service can read; ``message`` is meant for humans."""

    code = "invalid_image"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageTooLargeError(DecodeError):
    """The image declares more pixels than :data:`MAX_PIXELS` (a decompression bomb guard)."""

    code = "image_too_large"


class UnsupportedFormatError(DecodeError):
    """A real image in a format this service does not decode (HEIC, AVIF)."""

    code = "unsupported_image"


def decode(data: bytes, *, min_short_side: int = 256, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into a C-contiguous ``uint8`` array of shape ``(H, W, 3)``.

    ``min_short_side`` bounds JPEG draft scaling: the decoded shorter side never drops below it
    (nor below the original's). Raises :class:`DecodeError` (or its subclasses
    :class:`ImageTooLargeError`, :class:`UnsupportedFormatError`) with a message that says what
    to do; never anything else for bad bytes.
    """
    if not data:
        raise DecodeError("the image is empty (0 bytes)")
    try:
        return _decode(data, min_short_side, max_pixels)
    except _TruncatedError as cut:
        if cut.format in ("JPEG", "MPO"):
            repaired = _decode_without_end_marker(data, min_short_side, max_pixels)
            if repaired is not None:
                return repaired
        raise DecodeError(
            f"the {cut.format} image is cut short: the file ends before all of its pixels (an "
            "interrupted upload or download?); send the complete file"
        ) from None


class _TruncatedError(Exception):
    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.format = fmt


def _decode(data: bytes, min_short_side: int, max_pixels: int) -> np.ndarray:
    img = _open(data)
    try:
        return _to_rgb_array(img, min_short_side, max_pixels)
    except DecodeError:
        raise
    except MemoryError:
        raise ImageTooLargeError(
            f"the image is too large to decode in memory; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels: resize it and send it again"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes means corrupt
        fmt = img.format or "image"
        if isinstance(exc, OSError) and "truncated" in str(exc):
            raise _TruncatedError(fmt) from None
        raise DecodeError(
            f"the {fmt} image is damaged and cannot be decoded; open and save it again in an "
            f"image editor, or {_CONVERT}"
        ) from None
    finally:
        img.close()


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow's bomb warning is off with its limit (MAX_IMAGE_PIXELS = None above); kept
            # quiet in case a caller sets that limit again: ours is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image declares far more pixels than the limit of {MAX_PIXELS / 1e6:.0f} "
            "megapixels: resize it and send it again"
        ) from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for unidentifiable bytes
        raise _unidentified(data) from None


def _unidentified(data: bytes) -> DecodeError:
    """Why bytes that Pillow cannot open are refused, in words a person can act on."""
    other = _other_format(data)
    if other:
        return UnsupportedFormatError(
            f"this is {other}, which this service does not read (it reads {FORMAT_NAMES}): "
            f"{_CONVERT} (on an iPhone, Settings > Camera > Formats > Most Compatible makes the "
            "camera save JPEG)"
        )
    fmt = _signature(data)
    if fmt:
        return DecodeError(
            f"the {fmt} image is damaged or cut short and cannot be opened; send the complete "
            f"file, or {_CONVERT}"
        )
    return DecodeError(f"the data is not a supported image (expected {FORMAT_NAMES}); {_CONVERT}")


def _other_format(data: bytes) -> str | None:
    """``"a HEIC image"``/``"an AVIF image"`` for an ISO-BMFF image container, else ``None``."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return None
    box = int.from_bytes(data[:4], "big")
    # The major brand, then the compatible brands (4 bytes each) after the minor version.
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(box, len(data), 256), 4)]
    if any(brand in _AVIF_BRANDS for brand in brands):
        return "an AVIF image"
    if any(brand in _HEIF_BRANDS for brand in brands):
        return "a HEIC/HEIF image (the iPhone camera's default format)"
    return None


def _signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _SIGNATURES if data.startswith(magic)), None)


def _decode_without_end_marker(
    data: bytes, min_short_side: int, max_pixels: int
) -> np.ndarray | None:
    """The pixels of a JPEG that lacks only its end-of-image marker, else ``None``.

    The file must end inside its last scan (no marker after it), and two different paddings
    before the added end marker must decode to the same pixels: then no pixel data was missing.
    """
    last_scan = data.rfind(b"\xff\xda")
    if last_scan < 0 or last_scan + 4 > len(data):
        return None
    scan_data = last_scan + 2 + int.from_bytes(data[last_scan + 2 : last_scan + 4], "big")
    if _MARKER_IN_SCAN.search(data, scan_data):
        return None
    # A trailing 0xFF is the first half of the end marker (scan data escapes its own 0xFF bytes).
    body = data.rstrip(b"\xff")
    decoded = []
    for padding in _PADDINGS:
        try:
            decoded.append(_decode(body + padding + _JPEG_EOI, min_short_side, max_pixels))
        except (DecodeError, _TruncatedError):
            return None
    first, second = decoded
    return first if np.array_equal(first, second) else None


def _to_rgb_array(img: Image.Image, min_short_side: int, max_pixels: int) -> np.ndarray:
    width, height = img.size
    if width < 1 or height < 1:
        raise DecodeError(f"the image has no pixels ({width}x{height}); {_CONVERT}")
    if img.format in ("JPEG", "MPO"):
        # Read before decoding: the draft scale depends on it. (Only for JPEG: PNG's getexif()
        # decodes the whole image first, before the pixel limit below could refuse it.)
        _, reversed_axes = _ORIENTATIONS.get(_orientation(img), (None, ""))
        scale = _draft_scale(width, height, min_short_side, reversed_axes)
        if scale > 1:
            # Pillow picks the largest 1/2^k scale keeping both sides >= the requested size;
            # asking for exactly 1/scale of each side makes that ``scale`` itself.
            img.draft("RGB", (width // scale, height // scale))
    decoded_w, decoded_h = img.size
    if decoded_w * decoded_h > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels: resize it (a 12-megapixel photo, "
            "4000x3000, is plenty) and send it again"
        )
    img.load()
    transpose, _ = _ORIENTATIONS.get(_orientation(img), (None, ""))
    if transpose is not None:
        img = img.transpose(transpose)
    rgb = _convert_to_rgb(img)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _orientation(img: Image.Image) -> int:
    value = img.getexif().get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) else 1


def _draft_scale(width: int, height: int, min_short_side: int, reversed_axes: str) -> int:
    """The JPEG draft scale (1, 2, 4 or 8) to decode at.

    The largest one keeping the shorter side >= ``min_short_side``, lowered until it is exact: at
    1/s libjpeg averages s x s blocks counted from the stored image's top-left corner, so a side
    that is not a multiple of s ends in a partial block. When the EXIF orientation reverses that
    axis, the partial block lands at the start of the upright image and shifts every pixel by up
    to s - 1 source pixels against the same photo stored upright (mean difference of 3-11 levels
    measured at 1/2 and 1/4 scale; an answer changed by 0.3 probability).
    """
    short = min(width, height)
    if short <= min_short_side:
        return 1
    scale = min(8, short // min_short_side)
    scale = 1 << (scale.bit_length() - 1)  # 8, 4, 2 or 1, as libjpeg offers
    while scale > 1 and (
        ("x" in reversed_axes and width % scale) or ("y" in reversed_axes and height % scale)
    ):
        scale //= 2
    return scale


def _convert_to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _GRAY_HIGH_DEPTH:
        values = np.asarray(img, dtype=np.float64)
        # 32-bit float images are taken as 0..255; integer ones as 16-bit (0..65535 -> 0..255).
        scale = 1.0 if mode == "F" else 257.0
        gray = np.rint(np.clip(values / scale, 0, 255))
        return Image.fromarray(gray.astype(np.uint8), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in img.info
    )
    if mode in ("L", "1") and "transparency" in img.info:
        has_alpha = True
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
