"""Decompression bombs through the service: refused with 413 before the pixels are allocated.

``tests/test_decode.py`` covers ``shared.decode`` itself; here the bombs travel as a client sends
them (raw body, multipart file, base64 JSON) through the Lambda handler, and the process's peak
memory (tracemalloc for Python/numpy allocations, the kernel's VmHWM for everything, Pillow
included) shows the image was never decoded.
"""

import tracemalloc

import pytest

from shared.decode import MAX_PIXELS
from tests.imagegen import jpeg_declaring
from tests.robust_support import (
    check_reply,
    classify,
    pack,
    peak_rss_kib,
    png_bomb,
    report,
    reset_peak_rss,
)
from tests.robust_support import served_model as served_model

pytestmark = pytest.mark.usefixtures("served_model")

# Decoded to RGB the bombs need 2.7 GB (PNG) and 12.7 GB (JPEG); the refusal must stay far below.
MAX_PEAK_GROWTH_BYTES = 64 * 2**20


BOMBS = {
    "png-30000x30000": (png_bomb, "image/png", 30000 * 30000),
    "jpeg-65000x65000": (lambda: jpeg_declaring(65000, 65000), "image/jpeg", 65000 * 65000),
}


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
