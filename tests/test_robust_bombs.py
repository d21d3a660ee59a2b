"""Decompression bombs through the service: refused with 413 before the pixels are allocated.

``tests/test_decode.py`` covers ``shared.decode`` itself; here the bombs travel as a client sends
them (raw body, multipart file, base64 JSON) through the Lambda handler, and the process's peak
memory (tracemalloc for Python/numpy allocations, the kernel's VmHWM for everything, Pillow
included) shows the image was never decoded.
"""

import base64
import functools
import json
import struct
import tracemalloc
import zlib

import pytest

from shared.decode import MAX_PIXELS
from tests.test_api_support import multipart_body
from tests.test_decode import _jpeg_declaring
from tests.test_robust_support import check_reply, classify, peak_rss_kib, report, reset_peak_rss
from tests.test_robust_support import served_model as served_model

pytestmark = pytest.mark.usefixtures("served_model")

# Decoded to RGB the bombs need 2.7 GB (PNG) and 12.7 GB (JPEG); the refusal must stay far below.
MAX_PEAK_GROWTH_BYTES = 64 * 2**20


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


@functools.cache
def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A complete, valid 1-bit grayscale PNG of ``width`` x ``height`` black pixels.

    Every row is really there (a filter byte and the packed bits, deflated ~1000:1), so a decoder
    that trusted the header would inflate 112 MB and build a 2.7 GB RGB array from ~110 kB.
    """
    row = b"\x00" * (1 + (width + 7) // 8)
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


BOMBS = {
    "png-30000x30000": (png_bomb, "image/png", 30000 * 30000),
    "jpeg-65000x65000": (lambda: _jpeg_declaring(65000, 65000), "image/jpeg", 65000 * 65000),
}


def pack(form: str, data: bytes, content_type: str) -> tuple[bytes | str, str]:
    if form == "multipart":
        return multipart_body([("file", "bomb.img", content_type, data)])
    if form == "json":
        return json.dumps({"image": base64.b64encode(data).decode()}), "application/json"
    return data, content_type


@pytest.mark.parametrize("form", ["raw", "multipart", "json"])
@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_bombs_are_refused_with_413_without_allocating(
    bomb: str, form: str, request: pytest.FixtureRequest
):
    make, content_type, declared = BOMBS[bomb]
    data = make()
    assert declared > 10 * MAX_PIXELS and len(data) < 200_000  # small on the wire, huge inside
    body, packed_type = pack(form, data, content_type)
    classify(b"warm-up: load the model first", "image/png")  # its memory is not the bomb's

    reset_peak_rss()
    before = peak_rss_kib()
    tracemalloc.start()
    try:
        reply = classify(body, packed_type)
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = (peak_rss_kib() - before) * 1024

    check_reply(reply, body)  # includes the 2 s bound
    assert reply.status == 413, reply.payload
    assert reply.payload["error"] == "image_too_large"
    assert traced_peak < MAX_PEAK_GROWTH_BYTES
    assert rss_growth < MAX_PEAK_GROWTH_BYTES
    report(
        request,
        f"bomb {bomb} ({len(data):,} bytes, {form}): 413 in {reply.seconds * 1000:.1f} ms, "
        f"tracemalloc peak {traced_peak / 1024:.0f} KiB, peak RSS growth {rss_growth / 1024:.0f} KiB",
    )
