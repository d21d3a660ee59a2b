"""End to end: `chalice local` on a free loopback port, real HTTP requests with urllib."""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shared import DEFAULT_LABELS
from tests.api_client import chalice_local, http, multipart_body
from tests.imagegen import encode, synthetic_rgb


@pytest.fixture(scope="module")
def server(exported_model: Path) -> Iterator[str]:
    with chalice_local(exported_model) as base:
        yield base


def photo_12mp() -> bytes:
    """A 4000x3000 JPEG about the size a phone writes (~1.5 MB): gradient plus mild noise."""
    rgb = synthetic_rgb(4000, 3000, seed=5, content="gradient").astype(np.int16)
    rgb += np.random.default_rng(5).integers(-6, 7, rgb.shape, dtype=np.int16)
    return encode(np.clip(rgb, 0, 255).astype(np.uint8), "JPEG", quality=85)


def test_raw_jpeg_over_http(server: str, jpeg_bytes: bytes):
    status, headers, body = http(
        "POST", server + "/classify?top=2", jpeg_bytes, {"Content-Type": "image/jpeg"}
    )
    assert status == 200, body
    result = json.loads(body)
    assert list(result["probabilities"]) == list(DEFAULT_LABELS)
    assert len(result["top"]) == 2
    assert headers["Access-Control-Allow-Origin"] == "*"
    print(f"\nsmall JPEG (320x240) timing_ms: {result['timing_ms']}")


def test_multipart_two_files_over_http(server: str, jpeg_bytes: bytes, png_bytes: bytes):
    body, content_type = multipart_body(
        [("file", "a.jpg", "image/jpeg", jpeg_bytes), ("file", "b.png", "image/png", png_bytes)]
    )
    status, _, answer = http("POST", server + "/classify", body, {"Content-Type": content_type})
    assert status == 200, answer
    assert list(json.loads(answer)["results"]) == ["file/a.jpg", "file/b.png"]


def test_12_megapixel_photo_over_http(server: str):
    data = photo_12mp()
    status, _, body = http("POST", server + "/classify", data, {"Content-Type": "image/jpeg"})
    assert status == 200, body
    print(f"\n12 MP JPEG ({len(data):,} bytes) timing_ms: {json.loads(body)['timing_ms']}")


def test_errors_over_http(server: str):
    status, _, body = http("POST", server + "/classify", b"abc", {"Content-Type": "text/plain"})
    assert status == 415 and json.loads(body)["error"] == "unsupported_media_type"
    status, _, body = http("POST", server + "/classify", b"abc", {"Content-Type": "image/png"})
    assert status == 400 and json.loads(body)["error"] == "invalid_image"


def test_cors_preflight_over_http(server: str):
    status, headers, _ = http(
        "OPTIONS",
        server + "/classify",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-Api-Key" in headers["Access-Control-Allow-Headers"]


def test_page_over_http(server: str):
    status, headers, body = http("GET", server + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<title>skyclass</title>" in body
