"""shared.decode: every mode to RGB the same way, orientation, frames, bombs, bad bytes, and
messages that say what to do."""

import io
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image, features

from shared.decode import (
    MAX_PIXELS,
    DecodeError,
    ImageTooLargeError,
    UnsupportedFormatError,
    decode,
)
from tests.api_support import JARGON
from tests.imagegen import (
    encode,
    exif_jpeg,
    iso_bmff,
    jpeg_declaring,
    png_declaring,
    synthetic_rgb,
)


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


def _plain_message(error: DecodeError) -> str:
    assert not any(word in error.message for word in JARGON), error.message
    return error.message


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


# Quality 100 without chroma subsampling: the two files' own JPEG noise stays ~0.4 levels, far below
# the shift the draft grid caused (3-11 levels mean at these sizes before the fix).
LOSSLESS_ISH = {"quality": 100, "subsampling": 0}


# Which sides of the upright picture an orientation's transpose runs backwards.
REVERSES = {1: "", 2: "w", 3: "wh", 4: "h", 5: "", 6: "w", 7: "wh", 8: "h"}


def _scale_of(shape: tuple[int, ...], width: int, height: int) -> int:
    (scale,) = [s for s in (1, 2, 4, 8) if shape[:2] == (-(-height // s), -(-width // s))]
    return scale


@pytest.mark.parametrize(
    "size",
    [(300, 200), (1000, 750), (1024, 1030), (1003, 757), (2051, 1539), (2048, 1536)],
    ids=lambda size: f"{size[0]}x{size[1]}",
)
def test_exif_orientations_match_the_upright_photo_at_every_size(size: tuple[int, int]):
    """Orientation 1-8 decodes to the photo stored upright, decoded at the same scale: no pixel
    shift from draft blocks (a side that is not a multiple of the scale ends in a partial block,
    which a reversing orientation used to move to the front). Draft stays wherever it is exact."""
    width, height = size
    upright = Image.fromarray(synthetic_rgb(width, height, seed=3))
    physical = _save(upright, "JPEG", **LOSSLESS_ISH)
    upright_scale = _scale_of(decode(physical).shape, width, height)
    for orientation in range(1, 9):
        out = decode(exif_jpeg(upright, orientation, **LOSSLESS_ISH))
        scale = _scale_of(out.shape, width, height)
        expected = upright_scale
        while expected > 1 and any(
            {"w": width, "h": height}[side] % expected for side in REVERSES[orientation]
        ):
            expected //= 2
        assert scale == expected, (orientation, scale, expected)
        reference = decode(physical, min_short_side=min(width, height) // scale)
        assert out.shape == reference.shape, orientation
        diff = np.abs(out.astype(np.int16) - reference.astype(np.int16))
        assert diff.mean() < 0.5, (orientation, scale, diff.mean())


def test_draft_keeps_its_speed_for_phone_photos_in_every_orientation():
    """Phones write sides that are multiples of 8 (4000x3000, 4032x3024): every orientation keeps
    the 1/8 draft decode."""
    upright = Image.fromarray(synthetic_rgb(4032, 3024, seed=4, content="gradient"))
    for orientation in range(1, 9):
        assert decode(exif_jpeg(upright, orientation, quality=80)).shape == (378, 504, 3)


def test_orientation_in_a_png_is_applied_after_the_pixel_check():
    rgb = synthetic_rgb(40, 20, seed=6)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode(_save(Image.fromarray(rgb), "PNG", exif=exif.tobytes()))
    np.testing.assert_array_equal(out, np.rot90(rgb, k=-1))


@pytest.mark.parametrize(
    "data",
    [png_declaring(30000, 30000), png_declaring(65000, 65000), jpeg_declaring(65000, 65000)],
    ids=["png-30000x30000", "png-65000x65000", "jpeg-65000x65000"],
)
def test_decompression_bombs_are_refused_fast_without_allocating(data):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as info:
        decode(data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.code == "image_too_large"
    assert elapsed < 1.0
    assert peak < 5_000_000  # the image would need gigabytes
    # One limit, ours, in our words: never Pillow's "exceeds limit of 178956970 pixels".
    message = _plain_message(info.value)
    assert "the limit is 50 megapixels" in message and "resize" in message
    assert "65000x65000" in message or "30000x30000" in message


def test_a_large_jpeg_that_draft_scales_under_the_limit_is_not_refused_by_pillow():
    """Pillow alone refuses above ~179 MP before any scaling; ours counts the decoded pixels."""
    # 192 MP declared: decoded at 1/8 (2000x1500); the missing pixel data decodes gray.
    assert decode(jpeg_declaring(16000, 12000)).shape == (1500, 2000, 3)


def test_pixel_limit_is_explicit_and_configurable():
    data = encode(synthetic_rgb(100, 100, seed=8), "PNG")
    with pytest.raises(ImageTooLargeError, match="the limit is 0 megapixels"):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).shape == (100, 100, 3)
    assert MAX_PIXELS == 50_000_000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is text and not an image", "not a supported image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not a supported image"),
        (b"\x89PNG\r\n\x1a\n", "PNG image is damaged or cut short"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WebP image is damaged or cut short"),
    ],
)
def test_bad_bytes_raise_decode_error_with_a_human_message(data, message):
    with pytest.raises(DecodeError, match=message) as info:
        decode(data)
    assert info.value.code == "invalid_image"
    assert not isinstance(info.value, ImageTooLargeError)
    _plain_message(info.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"])
def test_truncated_images_say_so_in_plain_words(fmt):
    data = encode(synthetic_rgb(200, 150, seed=9, content="noise"), fmt)
    with pytest.raises(DecodeError) as info:
        decode(data[: len(data) // 2])
    message = _plain_message(info.value)
    assert "cut short" in message and "send the complete file" in message


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("content", ["mixed", "flat"])
def test_a_jpeg_missing_only_its_end_marker_decodes_like_the_complete_file(
    progressive: bool, content: str
):
    data = encode(synthetic_rgb(333, 251, seed=9, content=content), "JPEG", progressive=progressive)
    assert data.endswith(b"\xff\xd9")
    np.testing.assert_array_equal(decode(data[:-2]), decode(data))
    np.testing.assert_array_equal(decode(data[:-1]), decode(data))  # a lone 0xFF left


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_cut_inside_its_pixels_is_refused_not_filled_with_gray(progressive: bool):
    data = encode(synthetic_rgb(333, 251, seed=9), "JPEG", progressive=progressive)
    scan = data.rfind(b"\xff\xda")  # the last scan: cut well inside it
    for cut in (scan + (len(data) - scan) // 3, len(data) - 40, len(data) - 8):
        with pytest.raises(DecodeError, match="cut short"):
            decode(data[:cut])


def test_a_jpeg_cut_after_a_marker_segment_is_refused():
    data = encode(synthetic_rgb(120, 90, seed=9), "JPEG", progressive=True)
    tables = data.rfind(b"\xff\xc4")  # a Huffman table between two scans
    with pytest.raises(DecodeError, match="cut short"):
        decode(data[: tables + 30])


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (iso_bmff(b"heic", (b"mif1", b"heic")), "HEIC"),
        (iso_bmff(b"mif1", (b"mif1", b"heix")), "HEIC"),
        (iso_bmff(b"avif", (b"avif", b"mif1")), "AVIF"),
    ],
    ids=["heic", "heif-mif1", "avif"],
)
def test_heic_and_avif_are_recognised_and_refused_with_what_to_do(data: bytes, named: str):
    with pytest.raises(UnsupportedFormatError) as info:
        decode(data)
    assert info.value.code == "unsupported_image"
    message = _plain_message(info.value)
    assert named in message and "convert it to JPEG" in message


def test_a_real_avif_file_is_refused_with_the_conversion_advice():
    if not features.check("avif"):
        pytest.skip("this Pillow build cannot write AVIF")
    data = _save(Image.fromarray(synthetic_rgb(64, 48, seed=1)), "AVIF")
    with pytest.raises(UnsupportedFormatError, match=r"AVIF image.*convert it to JPEG"):
        decode(data)


def test_formats_outside_the_policy_are_refused():
    icon = _save(Image.new("RGB", (16, 16)), "ICO")
    with pytest.raises(DecodeError, match="not a supported image") as info:
        decode(icon)
    assert "convert it to JPEG or PNG" in _plain_message(info.value)


def test_the_same_bytes_always_give_the_same_pixels():
    data = encode(synthetic_rgb(640, 480, seed=10), "JPEG")
    np.testing.assert_array_equal(decode(data), decode(data))
