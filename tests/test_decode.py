"""shared.decode: every mode to RGB the same way, orientation, frames, bombs, bad bytes."""

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from shared.decode import MAX_PIXELS, DecodeError, ImageTooLargeError, decode
from tests.imagegen import encode, synthetic_rgb


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_supported_formats_decode_to_contiguous_uint8_rgb(fmt):
    rgb = synthetic_rgb(120, 80, seed=1)
    out = decode(encode(rgb, fmt))
    assert out.shape == (80, 120, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless
        np.testing.assert_array_equal(out, rgb)


def test_exif_orientation_is_applied():
    rgb = synthetic_rgb(160, 90, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(rgb, "JPEG", exif=exif.tobytes(), quality=95)
    out = decode(data)
    assert out.shape == (160, 90, 3)
    plain = decode(encode(rgb, "JPEG", quality=95))
    np.testing.assert_allclose(out.astype(int), np.rot90(plain, k=-1).astype(int), atol=40)


def test_transparency_is_composited_over_white_for_every_alpha_mode():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:2, :, 3] = 0  # top half fully transparent
    rgba[2:, :, 3] = 255
    img = Image.fromarray(rgba, "RGBA")
    for converted in (img, img.convert("LA")):
        fmt = "PNG"
        out = decode(_save(converted, fmt))
        assert (out[:2] == 255).all(), converted.mode
        assert not (out[2:] == 255).all(), converted.mode


def test_palette_with_transparency_and_bilevel_and_cmyk():
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 4, 8))
    out = decode(_save(pal, "PNG", transparency=0))
    assert (out[:, 4:] == 255).all() and (out[:, :4] == (0, 0, 255)).all()
    bilevel = Image.new("1", (8, 8), 1)
    assert (decode(_save(bilevel, "PNG")) == 255).all()
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = decode(_save(cmyk, "JPEG", quality=100))
    assert out[..., 0].min() > 200 and out[..., 1:].max() < 60


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 257 * 100, 65535, 32896]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    out = decode(_save(img, "PNG"))
    assert out[0, :, 0].tolist() == [0, 100, 255, 128]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_grayscale_becomes_three_equal_channels():
    gray = Image.fromarray(synthetic_rgb(30, 20, seed=4)[..., 0], "L")
    out = decode(_save(gray, "PNG"))
    np.testing.assert_array_equal(out[..., 0], np.asarray(gray))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_first_frame_of_an_animation_is_used():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    out = decode(data)
    assert (out == (255, 0, 0)).all()


def test_jpeg_draft_decodes_large_photos_at_reduced_scale_but_never_below_the_resize():
    big = encode(synthetic_rgb(4032, 3024, seed=6), "JPEG", quality=85)
    assert decode(big).shape == (378, 504, 3)  # 1/8 scale: shorter side 378 >= 256
    medium = encode(synthetic_rgb(1100, 600, seed=6), "JPEG")
    assert decode(medium).shape == (300, 550, 3)  # 1/2 scale: 300 >= 256; 1/4 would be 150
    small = encode(synthetic_rgb(500, 300, seed=6), "JPEG")
    assert decode(small).shape == (300, 500, 3)  # 1/2 would give 150 < 256: full size
    assert decode(big, min_short_side=3024).shape == (3024, 4032, 3)


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    raw = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(synthetic_rgb(16, 16, seed=7), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [_png_declaring(30000, 30000), _jpeg_declaring(65000, 65000)],
    ids=["png-30000x30000", "jpeg-65000x65000"],
)
def test_decompression_bombs_are_refused_fast_without_allocating(data):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=r"megapixels|too many pixels") as info:
        decode(data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.code == "image_too_large"
    assert elapsed < 1.0
    assert peak < 5_000_000  # the image would need gigabytes


def test_pixel_limit_is_explicit_and_configurable():
    data = encode(synthetic_rgb(100, 100, seed=8), "PNG")
    with pytest.raises(ImageTooLargeError, match="limit"):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).shape == (100, 100, 3)
    assert MAX_PIXELS == 50_000_000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is text and not an image", "not a supported image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not a supported image"),
        (b"\x89PNG\r\n\x1a\n", "not a supported image"),
    ],
)
def test_bad_bytes_raise_decode_error_with_a_human_message(data, message):
    with pytest.raises(DecodeError, match=message) as info:
        decode(data)
    assert info.value.code == "invalid_image"
    assert not isinstance(info.value, ImageTooLargeError)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
def test_truncated_images_are_reported_as_corrupt(fmt):
    data = encode(synthetic_rgb(200, 150, seed=9, content="noise"), fmt)
    with pytest.raises(DecodeError, match=r"truncated or corrupt|not a supported image"):
        decode(data[: len(data) // 2])


def test_formats_outside_the_policy_are_refused():
    icon = _save(Image.new("RGB", (16, 16)), "ICO")
    with pytest.raises(DecodeError, match="not a supported image"):
        decode(icon)


def test_the_same_bytes_always_give_the_same_pixels():
    data = encode(synthetic_rgb(640, 480, seed=10), "JPEG")
    np.testing.assert_array_equal(decode(data), decode(data))
