"""Bytes -> uint8 RGB array, the only way images enter the trainer or the API.

Policy (the same for every caller, so training and serving see the same pixels):

* Formats: JPEG (and MPO, what phones write), PNG, WebP, GIF, BMP, TIFF. Anything else is refused.
* The first frame of an animation is used.
* EXIF orientation is applied, so a portrait phone photo is portrait.
* Every mode becomes RGB the same way: transparency is composited over white; 16/32-bit
  grayscale is scaled to 8 bits (value / 257, rounded); palette, CMYK, YCbCr and bilevel images go
  through Pillow's own conversion.
* Decompression bombs: at most ``MAX_PIXELS`` (50 megapixels, enough for 48/50 MP phone
  sensors; 150 MB as RGB) are ever decoded. For JPEG the limit applies after draft-mode scaling,
  so a 108 MP photo that decodes at 1/8 scale is fine, while a 65000x65000 header is not.
* JPEGs are decoded in draft mode at the smallest 1/2, 1/4 or 1/8 scale whose shorter side still
  reaches ``min_short_side`` (the resize target), which makes a 12 MP photo ~10x cheaper.
"""

import io
import warnings

import numpy as np
from PIL import (  # noqa: F401 - importing a plugin registers its format for Image.open
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

MAX_PIXELS = 50_000_000
# MPO (multi-picture JPEG from phones) is opened by the JPEG plugin and reports format "MPO".
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_GRAY_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_WHITE = (255, 255, 255, 255)


class DecodeError(ValueError):
    """The bytes are not an image this service can read; ``message`` is meant for humans."""

    code = "invalid_image"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageTooLargeError(DecodeError):
    """The image declares more pixels than :data:`MAX_PIXELS` (a decompression bomb guard)."""

    code = "image_too_large"


def decode(data: bytes, *, min_short_side: int = 256, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into a C-contiguous ``uint8`` array of shape ``(H, W, 3)``.

    ``min_short_side`` bounds JPEG draft scaling: the decoded shorter side never drops below it
    (nor below the original's). Raises :class:`DecodeError` (or its subclass
    :class:`ImageTooLargeError`) with a human-readable message; never anything else for bad bytes.
    """
    if not data:
        raise DecodeError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning is redundant: the limit below is stricter and explicit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"the image declares too many pixels ({exc})") from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for unidentifiable bytes
        raise DecodeError(
            "the data is not a supported image (expected JPEG, PNG, WebP, GIF, BMP or TIFF)"
        ) from None
    try:
        return _to_rgb_array(img, min_short_side, max_pixels)
    except DecodeError:
        raise
    except MemoryError:
        raise ImageTooLargeError("the image is too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes means corrupt
        raise DecodeError(
            f"the {img.format} image is truncated or corrupt ({type(exc).__name__})"
        ) from None
    finally:
        img.close()


def _to_rgb_array(img: Image.Image, min_short_side: int, max_pixels: int) -> np.ndarray:
    width, height = img.size
    if width < 1 or height < 1:
        raise DecodeError(f"the image has no pixels ({width}x{height})")
    if img.format in ("JPEG", "MPO"):
        _apply_draft(img, min_short_side)
    width, height = img.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels"
        )
    img.load()
    img = ImageOps.exif_transpose(img) or img
    rgb = _convert_to_rgb(img)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _apply_draft(img: Image.Image, min_short_side: int) -> None:
    width, height = img.size
    short = min(width, height)
    if short <= min_short_side:
        return
    # draft() picks the largest 1/2^k scale keeping both sides >= the requested size.
    requested = (
        max(1, width * min_short_side // short),
        max(1, height * min_short_side // short),
    )
    img.draft("RGB", requested)


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
