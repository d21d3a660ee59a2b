"""POST /classify, GET /health and GET / through chalice's test client, with real images, real
Pillow decoding and real onnxruntime sessions: every accepted form, batches answered per file,
every client error the API documents, the dev-server edges the app handles, and the request log.
"""

import base64
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from PIL import Image, ImageOps, features

from app import app
from chalicelib import limits, media_types
from shared import DEFAULT_LABELS
from shared.paths import REPO
from tests.api_client import multipart_body
from tests.api_support import (
    assert_emf,
    assert_entry_error,
    assert_error,
    assert_plain,
    assert_result,
    b64,
    batch_of,
    emf_metrics,
    post,
    post_json,
    request_logs,
)
from tests.imagegen import STORED_AS, encode, exif_jpeg, iso_bmff, png_declaring, synthetic_rgb
from tests.model_support import tiny_model
from tests.robust_support import pixel_model as pixel_model


@pytest.fixture
def client(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    with Client(app, stage_name="dev") as test_client:
        yield test_client


@pytest.fixture
def pixel_client(pixel_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """Serves a model whose answer changes with the pixels (``robust_support.pixel_model``)."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(pixel_model))
    with Client(app, stage_name="dev") as test_client:
        yield test_client


# --- accepted forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "fmt", "options"),
    [
        ("image/jpeg", "JPEG", {"quality": 90}),
        ("image/png", "PNG", {}),
        ("image/webp", "WEBP", {"quality": 90}),
        ("image/gif", "GIF", {}),
        ("image/bmp", "BMP", {}),
        ("image/tiff", "TIFF", {}),
        ("application/octet-stream", "PNG", {}),
        ("image/jpg", "JPEG", {}),  # a common misspelling, accepted
        ("IMAGE/JPEG; charset=binary", "JPEG", {}),  # case and parameters do not matter
    ],
)
def test_raw_body_every_image_type(client: Client, content_type: str, fmt: str, options: dict):
    data = encode(synthetic_rgb(300, 220, seed=3), fmt, **options)
    response = post(client, data, content_type)
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body))
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_all_forms_give_the_same_answer(pixel_client: Client, jpeg_bytes: bytes):
    raw = json.loads(post(pixel_client, jpeg_bytes, "image/jpeg").body)
    body, content_type = multipart_body([("file", "bird.jpg", "image/jpeg", jpeg_bytes)])
    multi = json.loads(post(pixel_client, body, content_type).body)
    from_json = json.loads(post_json(pixel_client, {"image": b64(jpeg_bytes)}).body)
    for result in (raw, multi, from_json):
        assert_result(result, version="pixel-1")
        assert result["probabilities"] == raw["probabilities"]


def test_multipart_part_without_filename_but_image_type_counts_as_file(
    client: Client, png_bytes: bytes
):
    body, content_type = multipart_body([("image", None, "image/png", png_bytes)])
    response = post(client, body, content_type)
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body))


def test_lf_only_multipart_is_accepted(pixel_client: Client, png_bytes: bytes):
    """Hand-written bodies (a heredoc, some scripts) use bare LF line breaks."""
    crlf, content_type = multipart_body(
        [("top", None, None, b"2"), ("file", "a.png", "image/png", png_bytes)], boundary="b"
    )
    head, _, rest = crlf.partition(png_bytes)  # keep the image bytes themselves untouched
    lf = head.replace(b"\r\n", b"\n") + png_bytes + rest.replace(b"\r\n", b"\n")
    answers = [json.loads(post(pixel_client, body, content_type).body) for body in (crlf, lf)]
    assert answers[0] == {**answers[1], "timing_ms": answers[0]["timing_ms"]}
    assert_result(answers[1], top=2, version="pixel-1")


# --- base64 in JSON -----------------------------------------------------------------------------


def _base64_variants(data: bytes) -> dict[str, str]:
    standard, urlsafe = base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()
    assert standard.endswith("=") and ("+" in standard or "/" in standard)  # the variants differ
    wrapped = base64.encodebytes(data).decode()  # 76 columns, like `base64`
    return {
        "standard": standard,
        "standard-unpadded": standard.rstrip("="),
        "urlsafe": urlsafe,
        "urlsafe-unpadded": urlsafe.rstrip("="),
        "wrapped-lf": wrapped,
        "wrapped-crlf": wrapped.replace("\n", "\r\n"),
        "spaces-and-tabs": " \t".join(standard[i : i + 60] for i in range(0, len(standard), 60)),
        "data-url": "data:image/png;base64," + standard,
        "data-url-urlsafe-unpadded": "data:image/png;base64," + urlsafe.rstrip("="),
        "data-url-upper-case": "DATA:IMAGE/PNG;BASE64," + standard,
        "data-url-wrapped": "data:image/png;base64," + wrapped,
    }


def test_json_base64_every_variant_gives_the_raw_answer(pixel_client: Client):
    # A length that is not a multiple of 3 gives base64 its "=" padding.
    data = next(d for seed in range(50) if len(d := encode(synthetic_rgb(61, 47, seed), "PNG")) % 3)
    raw = json.loads(post(pixel_client, data, "image/png").body)["probabilities"]
    variants = _base64_variants(data)
    for name, text in variants.items():
        response = post_json(pixel_client, {"image": text})
        assert response.status_code == 200, (name, response.body)
        assert json.loads(response.body)["probabilities"] == raw, name
    # The same variants, all in one batch.
    results = batch_of(post_json(pixel_client, {"images": variants}), len(variants), failed=0)
    assert list(results) == list(variants)
    assert all(result["probabilities"] == raw for result in results.values())


@pytest.mark.parametrize(
    ("image", "code", "words"),
    [
        ("not base64!!", "invalid_base64", "contains '!'"),
        ("aGVsbG8%3D", "invalid_base64", "contains '%'"),
        ("QUJDRA=X", "invalid_base64", "contains '='"),
        ("QUJDR", "invalid_base64", "not complete base64"),
        ("data:image/png,rawtext", "invalid_base64", ';base64,"'),
        ("", "empty_body", "empty"),
        ("data:image/png;base64,", "empty_body", "empty"),
        ("aGVsbG8", "invalid_image", "not a supported image"),  # unpadded base64 of "hello"
    ],
)
def test_bad_base64_says_what_is_wrong(client: Client, image: str, code: str, words: str):
    message = assert_error(post_json(client, {"image": image}), 400, code)["message"]
    assert words in message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/bird.jpg",
        "http://127.0.0.1/x.png",
        "HTTPS://EXAMPLE.ORG/A.JPG",
        "  ftp://host/file.jpg",
        "file:///etc/passwd",
        "s3://bucket/key.jpg",
        "www.example.org/bird.jpg",
    ],
)
def test_a_url_where_bytes_belong_is_told_urls_are_not_fetched(
    client: Client, url: str, jpeg_bytes
):
    """Raw body, JSON image, JSON batch entry, JSON "url" key and multipart text field."""
    for image in (url, "data:image/png;base64," + url):
        message = assert_error(post_json(client, {"image": image}), 400, "invalid_base64")[
            "message"
        ]
        assert "URLs are not fetched" in message
    message = assert_error(post(client, url.encode(), "image/jpeg"), 400, "invalid_image")[
        "message"
    ]
    assert "URLs are not fetched" in message
    results = batch_of(post_json(client, {"images": [b64(jpeg_bytes), url]}), 2, failed=1)
    assert_result(results[0])
    assert "URLs are not fetched" in assert_entry_error(results[1], "invalid_base64")
    message = assert_error(post_json(client, {"url": url}), 400, "missing_image")["message"]
    assert "URLs are not fetched" in message
    body, content_type = multipart_body([("url", None, None, url.encode())])
    message = assert_error(post(client, body, content_type), 400, "no_file")["message"]
    assert "URLs are not fetched" in message


# --- batches ----------------------------------------------------------------------------------


def test_multipart_several_files_keyed_by_field_and_filename(
    client: Client, jpeg_bytes: bytes, png_bytes: bytes
):
    body, content_type = multipart_body(
        [
            ("note", None, None, b"text fields are ignored"),
            ("file", "a.jpg", "image/jpeg", jpeg_bytes),
            ("file", "b.png", "image/png", png_bytes),
            ("file", "a.jpg", "image/jpeg", jpeg_bytes),
            ("other", "C:\\Users\\me\\c.png", "application/octet-stream", png_bytes),
        ]
    )
    results = batch_of(post(client, body, content_type, "/classify?top=1"), 4, failed=0)
    assert list(results) == ["file/a.jpg", "file/b.png", "file/a.jpg#2", "other/c.png"]
    for result in results.values():
        assert_result(result, top=1)
    assert results["file/a.jpg"]["probabilities"] == results["file/a.jpg#2"]["probabilities"]


def test_a_bad_file_in_a_multipart_batch_keeps_every_good_answer(
    pixel_client: Client, jpeg_bytes: bytes, png_bytes: bytes
):
    heic = iso_bmff(b"heic", (b"mif1", b"heic"))
    body, content_type = multipart_body(
        [
            ("file", "ok.jpg", "image/jpeg", jpeg_bytes),
            ("file", "notes.txt", "text/plain", b"hi"),
            ("file", "bomb.png", "image/png", png_declaring(30000, 30000)),
            ("file", "cut.jpg", "image/jpeg", jpeg_bytes[: len(jpeg_bytes) // 2]),
            ("file", "IMG_0001.HEIC", "image/heic", heic),
            ("file", "ok.png", "image/png", png_bytes),
        ]
    )
    results = batch_of(post(pixel_client, body, content_type), 6, failed=4)
    alone = json.loads(post(pixel_client, jpeg_bytes, "image/jpeg").body)
    assert_result(results["file/ok.jpg"], version="pixel-1")
    assert results["file/ok.jpg"]["probabilities"] == alone["probabilities"]
    assert_result(results["file/ok.png"], version="pixel-1")
    assert "not a supported image" in assert_entry_error(results["file/notes.txt"], "invalid_image")
    assert "50 megapixels" in assert_entry_error(results["file/bomb.png"], "image_too_large")
    assert "cut short" in assert_entry_error(results["file/cut.jpg"], "invalid_image")
    assert "convert it to JPEG" in assert_entry_error(
        results["file/IMG_0001.HEIC"], "unsupported_image"
    )


def test_a_batch_where_every_file_fails_is_still_answered_per_file(client: Client):
    body, content_type = multipart_body(
        [("file", "a.txt", "text/plain", b"one"), ("file", "b.txt", "text/plain", b"two")]
    )
    results = batch_of(post(client, body, content_type), 2, failed=2)
    for entry in results.values():
        assert_entry_error(entry, "invalid_image")


def test_json_batch_as_a_list_answers_a_list_in_order(
    pixel_client: Client, jpeg_bytes: bytes, png_bytes: bytes
):
    images = [b64(png_bytes), "%%%", b64(jpeg_bytes), 42, b64(b"not an image"), ""]
    results = batch_of(post_json(pixel_client, {"images": images, "top": 1}), 6, failed=4)
    assert isinstance(results, list)
    singles = [json.loads(post(pixel_client, d, "image/png").body) for d in (png_bytes, jpeg_bytes)]
    for result, single in zip((results[0], results[2]), singles, strict=True):
        assert_result(result, top=1, version="pixel-1")
        assert result["probabilities"] == single["probabilities"]
    assert_entry_error(results[1], "invalid_base64")
    assert_entry_error(results[3], "missing_image")
    assert_entry_error(results[4], "invalid_image")
    assert_entry_error(results[5], "empty_body")


def test_json_batch_as_an_object_is_keyed_by_its_names(client: Client, png_bytes: bytes):
    names = {"drone.png": b64(png_bytes), "bird\u0007.png": b64(png_bytes), "x": "@@@"}
    results = batch_of(post_json(client, {"images": names}), 3, failed=1)
    assert list(results) == ["drone.png", "bird.png", "x"]  # control characters dropped
    assert_result(results["drone.png"])
    assert_entry_error(results["x"], "invalid_base64")


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ({"images": []}, 400, "missing_image"),
        ({"images": {}}, 400, "missing_image"),
        ({"images": "abc"}, 400, "missing_image"),
        ({"images": ["aGk="] * (limits.MAX_FILES + 1)}, 413, "too_many_files"),
        ({"image": "aGk=", "images": ["aGk="]}, 400, "missing_image"),
    ],
)
def test_malformed_json_batches_are_refused_whole(client: Client, document, status, code):
    assert_error(post_json(client, document), status, code)


def test_a_batch_over_its_time_budget_keeps_the_answers_it_has(
    client: Client, monkeypatch: pytest.MonkeyPatch, png_bytes: bytes
):
    monkeypatch.setattr(limits, "BATCH_SECONDS", 0.0)  # every image is "too slow"
    body, content_type = multipart_body(
        [("file", f"{i}.png", "image/png", png_bytes) for i in (1, 2, 3)]
    )
    results = batch_of(post(client, body, content_type), 3, failed=2)
    assert_result(results["file/1.png"])  # the first file always runs
    for key in ("file/2.png", "file/3.png"):
        assert "smaller batch" in assert_entry_error(results[key], "batch_too_large")
    single, content_type = multipart_body([("file", "1.png", "image/png", png_bytes)])
    assert post(client, single, content_type).status_code == 200


# --- top ----------------------------------------------------------------------------------------


def test_top_from_the_query_string(client: Client, jpeg_bytes: bytes):
    assert_result(json.loads(post(client, jpeg_bytes, "image/jpeg", "/classify?top=2").body), top=2)
    assert_result(json.loads(post(client, jpeg_bytes, "image/jpeg", "/classify?top=99").body))
    assert_result(json.loads(post(client, jpeg_bytes, "image/jpeg", "/classify?top=").body))


@pytest.mark.parametrize("top", ["4", "5", "1234567", "9" * 20, "9" * 5000, "0002"])
def test_any_run_of_ascii_digits_is_a_top(
    client: Client, capsys: pytest.CaptureFixture[str], jpeg_bytes: bytes, top: str
):
    """Above the label count, however many digits (more than Python's int() takes), top means
    every label; leading zeros are just zeros. The log line says what was applied."""
    request_logs(capsys)
    answer = json.loads(post(client, jpeg_bytes, "image/jpeg", f"/classify?top={top}").body)
    applied = min(int(top.lstrip("0")[:9]), len(DEFAULT_LABELS))
    assert_result(answer, top=applied)
    (line,) = request_logs(capsys)
    assert line["top"] == applied


def test_a_huge_top_means_every_label_in_the_body_too(client: Client, png_bytes: bytes):
    for top in (10**30, "9" * 40):
        assert_result(json.loads(post_json(client, {"image": b64(png_bytes), "top": top}).body))
    body, content_type = multipart_body(
        [("file", "a.png", "image/png", png_bytes), ("top", None, None, b"12345678901")]
    )
    assert_result(json.loads(post(client, body, content_type).body))
    # The query string still wins over the body, a huge value included.
    response = post_json(client, {"image": b64(png_bytes), "top": 1}, "/classify?top=" + "7" * 30)
    assert_result(json.loads(response.body))


def test_top_from_a_multipart_field_and_a_json_key(client: Client, png_bytes: bytes):
    body, content_type = multipart_body(
        [("file", "a.png", "image/png", png_bytes), ("top", None, None, b"1")]
    )
    assert_result(json.loads(post(client, body, content_type).body), top=1)
    for top in (3, "3"):
        response = post_json(client, {"image": b64(png_bytes), "top": top})
        assert_result(json.loads(response.body), top=3)
    results = batch_of(post_json(client, {"images": [b64(png_bytes)] * 2, "top": 2}), 2, 0)
    for result in results:
        assert_result(result, top=2)


def test_the_query_string_top_wins_over_the_body(client: Client, png_bytes: bytes):
    response = post_json(client, {"image": b64(png_bytes), "top": 3}, "/classify?top=1")
    assert_result(json.loads(response.body), top=1)
    body, content_type = multipart_body(
        [("top", None, None, b"3"), ("file", "a.png", "image/png", png_bytes)]
    )
    assert_result(json.loads(post(client, body, content_type, "/classify?top=2").body), top=2)


@pytest.mark.parametrize(
    "bad",
    ["0", "000", "-1", "abc", "1.5", "%EF%BC%92", "%D9%A2", "+2", "%202", "2%20", "0x2", "1e1"],
)
def test_top_must_be_ascii_digits_in_the_query(client: Client, jpeg_bytes: bytes, bad: str):
    """Full-width "２" (%EF%BC%92) and Arabic-Indic "٢" (%D9%A2) are digits to int(), not here."""
    response = post(client, jpeg_bytes, "image/jpeg", f"/classify?top={bad}")
    assert "top in the query string" in assert_error(response, 400, "invalid_parameter")["message"]


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "２", " 2", [2], {"n": 2}])
def test_top_must_be_ascii_digits_in_the_body(client: Client, png_bytes: bytes, bad: object):
    response = post_json(client, {"image": b64(png_bytes), "top": bad})
    assert "top in the body" in assert_error(response, 400, "invalid_parameter")["message"]
    body, content_type = multipart_body(
        [("file", "a.png", "image/png", png_bytes), ("top", None, None, str(bad).encode())]
    )
    assert_error(post(client, body, content_type), 400, "invalid_parameter")


# --- images the decoder refuses or repairs ------------------------------------------------------


def test_exif_orientations_answer_like_the_upright_photo(pixel_client: Client):
    """Every orientation, through every packing, answers what the photo stored upright answers;
    the same stored pixels without their orientation tag answer differently (so the model does
    see the turn). 1280x1024 keeps its 1/4 draft decode in every orientation."""
    upright = Image.fromarray(synthetic_rgb(1280, 1024, seed=7, content="gradient"))
    options = {"quality": 95, "subsampling": 0}
    buffer = io.BytesIO()
    upright.save(buffer, "JPEG", **options)
    expected = json.loads(post(pixel_client, buffer.getvalue(), "image/jpeg").body)
    for orientation in range(1, 9):
        data = exif_jpeg(upright, orientation, **options)
        for form, (body, content_type) in {
            "raw": (data, "image/jpeg"),
            "multipart": multipart_body([("file", "p.jpg", "image/jpeg", data)]),
            "json": (json.dumps({"image": b64(data)}).encode(), "application/json"),
        }.items():
            answer = json.loads(post(pixel_client, body, content_type).body)
            for label, p in expected["probabilities"].items():
                assert answer["probabilities"][label] == pytest.approx(p, abs=2e-3), (
                    orientation,
                    form,
                )
        if orientation != 1:
            turn = STORED_AS[orientation]
            buffer = io.BytesIO()
            upright.transpose(turn).save(buffer, "JPEG", **options)
            untagged = json.loads(post(pixel_client, buffer.getvalue(), "image/jpeg").body)
            gap = max(
                abs(untagged["probabilities"][k] - p) for k, p in expected["probabilities"].items()
            )
            assert gap > 0.02, (orientation, gap)


def test_odd_sized_exif_jpegs_answer_exactly_like_their_upright_pixels(pixel_client: Client):
    """1003x757 cannot be draft-decoded exactly once a side is reversed (its sides are odd), so
    the API decodes it in full: the answer is bit for bit that of a PNG holding the photo's
    full-resolution upright pixels. (Reduced-scale-then-rotate shifted the pixels: a different
    answer.)"""
    upright = Image.fromarray(synthetic_rgb(1003, 757, seed=8, content="gradient"))
    for orientation in (2, 3, 4, 6, 7, 8):
        data = exif_jpeg(upright, orientation, quality=90)
        with Image.open(io.BytesIO(data)) as stored:
            # Pillow's own reference turn, on a full-resolution decode.
            pixels = ImageOps.exif_transpose(stored).convert("RGB")
        buffer = io.BytesIO()
        pixels.save(buffer, "PNG")
        as_png = json.loads(post(pixel_client, buffer.getvalue(), "image/png").body)
        as_jpeg = json.loads(post(pixel_client, data, "image/jpeg").body)
        assert as_jpeg["probabilities"] == as_png["probabilities"], orientation


def test_a_jpeg_missing_only_its_end_marker_is_classified(pixel_client: Client):
    data = encode(synthetic_rgb(320, 240, seed=1), "JPEG", quality=90)
    complete = json.loads(post(pixel_client, data, "image/jpeg").body)
    response = post(pixel_client, data[:-2], "image/jpeg")
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["probabilities"] == complete["probabilities"]


def test_truncated_and_corrupt_images_are_400_in_plain_words(
    client: Client, jpeg_bytes: bytes, png_bytes: bytes
):
    cut = assert_error(
        post(client, jpeg_bytes[: len(jpeg_bytes) // 2], "image/jpeg"), 400, "invalid_image"
    )
    assert "JPEG image is cut short" in cut["message"]
    assert "send the complete file" in cut["message"]
    corrupt_png = png_bytes[:100] + bytes(200) + png_bytes[300:]
    damaged = assert_error(post(client, corrupt_png, "image/png"), 400, "invalid_image")
    assert "PNG image is damaged" in damaged["message"]


def test_not_an_image_is_400(client: Client):
    body = assert_error(post(client, b"hello, not a picture", "image/jpeg"), 400, "invalid_image")
    assert "not a supported image" in body["message"] and "convert it" in body["message"]


@pytest.mark.parametrize("form", ["raw", "multipart", "json"])
def test_too_many_pixels_is_413_with_our_one_limit(client: Client, form: str):
    """65000x65000 is beyond Pillow's own bomb limit too: its words must never reach a client."""
    for width in (8000, 65000):
        data = png_declaring(width, width)
        body, content_type = {
            "raw": (data, "image/png"),
            "multipart": multipart_body([("file", "big.png", "image/png", data)]),
            "json": (json.dumps({"image": b64(data)}).encode(), "application/json"),
        }[form]
        message = assert_error(post(client, body, content_type), 413, "image_too_large")["message"]
        assert f"{width}x{width} pixels" in message
        assert "the limit is 50 megapixels" in message and "resize it" in message


def test_heic_and_avif_are_415_saying_convert_to_jpeg(client: Client):
    heic = iso_bmff(b"heic", (b"mif1", b"heic"))
    for content_type in ("application/octet-stream", "image/jpeg"):
        message = assert_error(post(client, heic, content_type), 415, "unsupported_image")[
            "message"
        ]
        assert "HEIC" in message and "convert it to JPEG" in message
    for content_type in ("image/heic", "image/heif", "image/avif", "IMAGE/HEIC; q=1"):
        message = assert_error(post(client, heic, content_type), 415, "unsupported_media_type")[
            "message"
        ]
        assert "convert it to JPEG" in message
    if features.check("avif"):  # a real AVIF file, written by Pillow
        buffer = io.BytesIO()
        Image.fromarray(synthetic_rgb(32, 32, seed=2)).save(buffer, "AVIF")
        message = assert_error(
            post(client, buffer.getvalue(), "application/octet-stream"), 415, "unsupported_image"
        )["message"]
        assert "AVIF" in message and "convert it to JPEG" in message


# --- other client errors ------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
def test_empty_raw_body_is_400(client: Client, content_type: str):
    assert_error(post(client, b"", content_type), 400, "empty_body")


def test_multipart_without_a_file_is_400(client: Client):
    body, content_type = multipart_body([("name", None, None, b"just text")])
    message = assert_error(post(client, body, content_type), 400, "no_file")["message"]
    assert "file" in message
    # What a browser form sends when its file input was left empty.
    body, content_type = multipart_body([("file", "", "application/octet-stream", b"")])
    assert_error(post(client, body, content_type), 400, "no_file")
    assert_error(post(client, b"", content_type), 400, "empty_body")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\ndata", "multipart/form-data"),
        (b"no boundary anywhere", "multipart/form-data; boundary=abc"),
        (
            b'--abc\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\ndata',
            "multipart/form-data; boundary=abc",
        ),  # truncated: no closing boundary
    ],
)
def test_malformed_multipart_is_400(client: Client, body: bytes, content_type: str):
    assert_error(post(client, body, content_type), 400, "invalid_multipart")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"[1, 2]", "missing_image"),
        (b'{"picture": "abc"}', "missing_image"),
        (b'{"image": 42}', "missing_image"),
    ],
)
def test_bad_json_bodies_are_400(client: Client, payload: bytes, code: str):
    assert_error(post(client, payload, "application/json"), 400, code)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "image/svg+xml", None]
)
def test_unsupported_content_type_is_415_listing_the_supported(
    client: Client, jpeg_bytes: bytes, content_type: str | None
):
    message = assert_error(post(client, jpeg_bytes, content_type), 415, "unsupported_media_type")[
        "message"
    ]
    for supported in ("image/jpeg", "image/png", "multipart/form-data", "application/json"):
        assert supported in message


def test_long_client_values_are_cut_in_messages(client: Client, jpeg_bytes: bytes):
    long_type = "application/" + "x" * 5000
    message = assert_error(post(client, jpeg_bytes, long_type), 415, "unsupported_media_type")[
        "message"
    ]
    assert f"'{long_type[:40]}…'" in message and len(message) < 600
    response = post(client, jpeg_bytes, "image/jpeg", "/classify?top=" + "9" * 3000 + "x")
    message = assert_error(response, 400, "invalid_parameter")["message"]
    assert "…" in message and len(message) < 300


def test_body_over_the_limit_is_413_saying_what_to_do(client: Client, jpeg_bytes: bytes):
    oversized = jpeg_bytes + bytes(limits.MAX_BODY_BYTES + 1 - len(jpeg_bytes))
    message = assert_error(post(client, oversized, "image/jpeg"), 413, "payload_too_large")[
        "message"
    ]
    assert "the limit is 4,500,000 bytes" in message and "resize or compress" in message
    as_json = json.dumps({"image": "A" * limits.MAX_BODY_BYTES}).encode()
    message = assert_error(post(client, as_json, "application/json"), 413, "payload_too_large")[
        "message"
    ]
    assert "base64" in message
    at_limit = jpeg_bytes + bytes(limits.MAX_BODY_BYTES - len(jpeg_bytes))  # trailing bytes are ok
    assert post(client, at_limit, "image/jpeg").status_code == 200


def test_the_docs_give_the_one_byte_limit():
    for path in (REPO / "docs" / "api.md", REPO / "README.md"):
        text = path.read_text(encoding="utf-8")
        for vague in ("4.4 MB", "about 4.5", "~4.5", "4.5MB"):
            assert vague not in text, (path.name, vague)
    assert "**4,500,000 bytes**" in (REPO / "docs" / "api.md").read_text(encoding="utf-8")


def test_too_many_files_is_413(client: Client, png_bytes: bytes):
    parts = [("file", f"{i}.png", "image/png", png_bytes) for i in range(limits.MAX_FILES + 1)]
    body, content_type = multipart_body(parts)
    assert_error(post(client, body, content_type), 413, "too_many_files")


# --- dev-server edges the app can answer itself (over real HTTP: test_local_server.py) --------


@pytest.mark.parametrize("path", ["/", "/health"])
def test_head_answers_the_get_headers_without_a_body(client: Client, path: str):
    get, head = client.http.get(path), client.http.head(path)
    assert head.status_code == get.status_code == 200
    assert head.body == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/classify", "POST"),
        ("PUT", "/classify", "POST"),
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
        ("PATCH", "/health", "GET, HEAD"),
    ],
)
def test_other_methods_are_405_in_our_shape_with_cors(
    client: Client, method: str, path: str, allow: str
):
    response = client.http.request(method, path, headers={"Content-Type": "text/plain"}, body=b"x")
    body = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow and allow.split(",")[0] in body["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert client.http.head("/classify").body == b""  # a HEAD 405 carries no body either


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_unknown_paths_are_404_in_our_shape_with_cors(client: Client, method: str):
    response = client.http.request(method, "/predict")
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if method != "HEAD":
        assert "POST /classify" in assert_error(response, 404, "not_found")["message"]


def test_an_unread_chunked_body_is_411_and_closes_the_connection(client: Client):
    response = post(client, b"", "image/jpeg", headers={"Transfer-Encoding": "chunked"})
    message = assert_error(response, 411, "length_required")["message"]
    assert "Content-Length" in message and "curl --data-binary" in message
    assert response.headers["Connection"] == "close"


@pytest.mark.parametrize("value", ["abc", "5, 5", "+5", "-1", "0x10", "1e3", "５"])
def test_a_malformed_content_length_is_400(client: Client, jpeg_bytes: bytes, value: str):
    response = post(client, jpeg_bytes, "image/jpeg", headers={"Content-Length": value})
    message = assert_error(response, 400, "invalid_content_length")["message"]
    assert "digits 0-9" in message


def _gateway_event(body: bytes, content_lengths: list[str]) -> dict:
    """An API Gateway proxy event whose request carried these Content-Length headers."""
    headers = {"Content-Type": ["image/jpeg"], "Content-Length": content_lengths}
    return {
        "resource": "/classify",
        "path": "/classify",
        "httpMethod": "POST",
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": "/classify", "httpMethod": "POST", "stage": "api"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


@pytest.mark.parametrize("repeated", [["same", "same"], ["same", "other"], ["same", "same", "x"]])
def test_repeated_content_length_headers_are_400(
    exported_model: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes, repeated: list
):
    """What API Gateway hands Lambda: every value of a repeated header in multiValueHeaders.
    Equal or not, two Content-Lengths are the shape of request smuggling: refused."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    size = str(len(jpeg_bytes))
    values = [{"same": size, "other": "10", "x": "abc"}[v] for v in repeated]
    response = app(_gateway_event(jpeg_bytes, values), None)
    assert response["statusCode"] == 400, response
    body = json.loads(response["body"])
    assert body["error"] == "invalid_content_length"
    assert f"{len(values)} Content-Length headers" in assert_plain(body["message"])
    single = app(_gateway_event(jpeg_bytes, [size]), None)
    assert single["statusCode"] == 200, single


# --- the request log --------------------------------------------------------------------------


def test_one_json_log_line_per_request_with_emf_metrics(
    client: Client, capsys: pytest.CaptureFixture[str], jpeg_bytes: bytes
):
    request_logs(capsys)
    response = post(client, jpeg_bytes, "image/jpeg", "/classify?top=2")
    (line,) = request_logs(capsys)
    result = json.loads(response.body)
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert (line["route"], line["method"], line["status"], line["error"]) == (
        "/classify",
        "POST",
        200,
        None,
    )
    assert (line["bytes"], line["files"], line["top"], line["reject"]) == (
        len(jpeg_bytes),
        1,
        2,
        True,
    )
    assert (line["label"], line["confidence"]) == (result["label"], result["confidence"])
    assert line["known"] is True and line["Unknown"] == 0
    assert line["model_version"] == "test-0"
    assert {"read", "model", "decode", "preprocess", "inference"} <= set(line["phases_ms"])
    assert line["latency_ms"] >= sum(result["timing_ms"].values()) - 0.1
    assert_emf(line)
    assert emf_metrics(line) == {
        "Latency": ("Route",),
        "Requests": ("Route",),
        "Unknown": ("Route",),
        "Classifications": ("Label",),
    }
    assert (line["Route"], line["Label"], line["Requests"], line["Classifications"]) == (
        "/classify",
        result["label"],
        1,
        1,
    )


def test_the_log_line_of_an_error_and_of_a_batch_names_no_file(
    client: Client, capsys: pytest.CaptureFixture[str], png_bytes: bytes
):
    client.http.get("/health")  # the model is loaded: even a refused request names its version
    request_logs(capsys)
    assert_error(post(client, b"", "image/png"), 400, "empty_body")
    secret = "holiday-photo-of-my-kids"
    body, content_type = multipart_body(
        [
            ("file", f"{secret}.png", "image/png", png_bytes),
            ("file", f"{secret}-2.png", "image/png", png_bytes),
            ("file", f"{secret}.txt", "text/plain", b"not an image"),
        ]
    )
    batch_of(post(client, body, content_type), 3, failed=1)
    error_line, batch_line = request_logs(capsys)
    assert (error_line["status"], error_line["error"], error_line["ErrorCode"]) == (
        400,
        "empty_body",
        "empty_body",
    )
    assert emf_metrics(error_line)["Errors"] == ("ErrorCode",) and error_line["Errors"] == 1
    assert error_line["model_version"] == "test-0"
    assert "label" not in error_line
    assert_emf(error_line)
    assert batch_line["status"] == 200 and batch_line["files"] == 3
    label = json.loads(post(client, png_bytes, "image/png").body)["label"]
    assert batch_line["labels"] == {label: 2} and batch_line["errors"] == {"invalid_image": 1}
    assert (batch_line["Label"], batch_line["Classifications"]) == (label, 2)
    assert (batch_line["ErrorCode"], batch_line["Errors"]) == ("invalid_image", 1)
    assert_emf(batch_line)
    for line in (error_line, batch_line):
        text = json.dumps(line)
        assert secret not in text and b64(png_bytes)[:40] not in text


def test_every_route_logs_its_line(client: Client, capsys: pytest.CaptureFixture[str]):
    request_logs(capsys)
    client.http.get("/health")
    client.http.head("/")
    client.http.get("/nowhere")
    client.http.get("/classify")
    lines = request_logs(capsys)
    assert [(line["route"], line["method"], line["status"]) for line in lines] == [
        ("/health", "GET", 200),
        ("/", "HEAD", 200),
        ("(unknown)", "GET", 404),
        ("/classify", "GET", 405),
    ]
    assert lines[0]["model_version"] == "test-0"
    for line in lines:
        assert_emf(line)


# --- model availability -------------------------------------------------------------------------


def test_a_missing_model_is_503_naming_the_variable_and_the_publish_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    jpeg_bytes: bytes,
):
    """SKYCLASS_MODEL_PATH set to nothing: the answer names the variable and the command, the
    path it tried goes to the log only."""
    missing = tmp_path / "nowhere" / "model.onnx"
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(missing))
    with Client(app, stage_name="dev") as c:
        for response in (c.http.get("/health"), post(c, jpeg_bytes, "image/jpeg")):
            message = assert_error(response, 503, "model_unavailable")["message"]
            assert "SKYCLASS_MODEL_PATH names a model file that does not exist" in message
            assert "`python -m trainer.export RUN_DIR --publish`" in message
            assert str(tmp_path) not in response.body.decode()
    assert str(missing) in caplog.text


def test_no_published_model_is_503_naming_the_command_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
):
    """No SKYCLASS_MODEL_PATH and nothing published (the app folder's model file missing)."""
    from chalicelib import model_store

    monkeypatch.delenv("SKYCLASS_MODEL_PATH", raising=False)
    monkeypatch.setattr(model_store, "served_model_path", lambda: tmp_path / "model.onnx")
    monkeypatch.setattr(model_store, "_loaded", None)
    with Client(app, stage_name="dev") as c:
        message = assert_error(post(c, jpeg_bytes, "image/jpeg"), 503, "model_unavailable")[
            "message"
        ]
    assert message == (
        "no model has been published: run `python -m trainer.export RUN_DIR --publish` and "
        "redeploy, or set SKYCLASS_MODEL_PATH to an exported model.onnx"
    )


def test_broken_model_is_503_without_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
):
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"this is not an onnx file")
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(broken))
    with Client(app, stage_name="dev") as c:
        response = post(c, jpeg_bytes, "image/jpeg")
    message = assert_error(response, 503, "model_unavailable")["message"]
    assert message.startswith("the model SKYCLASS_MODEL_PATH names cannot be loaded")
    assert "`python -m trainer.export RUN_DIR --publish`" in message
    assert str(tmp_path) not in response.body.decode()


# --- other routes -------------------------------------------------------------------------------


def test_health_reports_model_labels_limits_and_formats(client: Client):
    response = client.http.get("/health")
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["labels"] == list(DEFAULT_LABELS)
    assert body["model"]["version"] == "test-0"
    assert body["limits"] == {
        "max_body_bytes": 4_500_000,
        "max_files": limits.MAX_FILES,
        "max_pixels": 50_000_000,
    }
    assert body["formats"] == ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
    # The upload page's list (chalicelib.media_types, free of Pillow) is the decoder's.
    assert [name.upper() for name, _, _ in media_types.FORMATS] == body["formats"]


HEALTH_DOC = REPO / "docs" / "api.md"
HEALTH_BLOCK = re.compile(
    r"(<!-- health-example: start -->\n```json\n)(.*?)(\n```\n<!-- health-example: end -->)",
    re.DOTALL,
)


def _shape(value: Any, key: str = "") -> Any:
    """The JSON shape of ``value``: keys and nesting, and each leaf's type (a number is a
    number). The rule's ``details`` are the trainer's free-form figures: only their type."""
    if isinstance(value, dict):
        return "object" if key == "details" else {k: _shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_health_example_in_the_docs_is_a_real_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """docs/api.md's /health example has the shape of a real answer, and the same limits,
    formats and preprocessing; SKYCLASS_WRITE_DOCS=1 writes a fresh one first."""
    from shared.model_contract import Rejection
    from trainer.learning.config import TrainConfig

    # The rule and the input size as trainer.fit --negatives exports them by default.
    by_kind = {"airliner": {"n": 40, "rejected": 1.0}}
    val = {"threshold": 0.0, "in_class": 412, "in_class_accepted": 0.951, "negatives": 160,
           "negatives_rejected": 0.94, "auroc": 0.991, "by_kind": by_kind}  # fmt: skip
    details = {"val": val, "set_on": TrainConfig().chosen_on,
               "per_class_rejected": {"Winged Drones": {"n": 9, "rejected": 0.111}}}  # fmt: skip
    rule = Rejection("background_class+nearest_photo", "known_score", 0.0, 0.95, details)
    model = tiny_model(
        tmp_path / "m.onnx", DEFAULT_LABELS, rule, "20261201-101500", True, TrainConfig().spec
    )
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(model))
    with Client(app, stage_name="dev") as c:
        real = json.loads(c.http.get("/health").body)
    text = HEALTH_DOC.read_text(encoding="utf-8")
    if os.environ.get("SKYCLASS_WRITE_DOCS"):
        fresh = json.dumps(real, indent=2, ensure_ascii=False)
        text = HEALTH_BLOCK.sub(lambda m: m.group(1) + fresh + m.group(3), text)
        HEALTH_DOC.write_text(text, encoding="utf-8")
    block = HEALTH_BLOCK.search(text)
    assert block, "docs/api.md lost its health-example markers"
    documented = json.loads(block.group(2))
    assert _shape(documented) == _shape(real), "the /health example no longer matches the app"
    for key in ("labels", "preprocess", "limits", "accepts", "formats", "status"):
        assert documented[key] == real[key], key
    assert documented["rejection_note"] == real["rejection_note"]


def test_page_is_self_contained_html_with_the_limits_filled_in(client: Client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert '<input id="file" type="file"' in html and "classify" in html
    assert "__" not in html  # every placeholder filled
    assert "JPEG, PNG, WebP, GIF, BMP, TIFF, up to 4,500,000 bytes" in html
    for external in ('src="http', "src='http", 'href="http', "@import", "cdn"):
        assert external not in html


def test_cors_headers_on_results_and_errors(client: Client, jpeg_bytes: bytes):
    # The OPTIONS preflight is checked over real HTTP in test_local_server.py (chalice's test
    # client cannot represent its empty body).
    for response in (post(client, jpeg_bytes, "image/jpeg"), post(client, b"", "image/jpeg")):
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_api_gateway_proxy_event_with_base64_multipart(
    exported_model: Path, monkeypatch, png_bytes
):
    """What API Gateway really sends for a binary media type: the body base64-encoded."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    body, content_type = multipart_body([("file", "x.png", "image/png", png_bytes)])
    event = {
        "resource": "/classify",
        "path": "/classify",
        "httpMethod": "POST",
        "headers": {"Content-Type": content_type, "Accept": "*/*"},
        "multiValueHeaders": {"Content-Type": [content_type], "Accept": ["*/*"]},
        "queryStringParameters": {"top": "2"},
        "multiValueQueryStringParameters": {"top": ["2"]},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/classify",
            "httpMethod": "POST",
            "stage": "api",
            "requestId": "gateway-request-1",
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    response = app(event, None)
    assert response["statusCode"] == 200, response
    assert_result(json.loads(response["body"]), top=2)
    assert response["headers"]["X-Request-Id"] == "gateway-request-1"


def test_insomnia_collection_is_importable_and_its_json_requests_work(
    rejecting_model: Path, monkeypatch: pytest.MonkeyPatch
):
    """Served by a model that finds every image unknown: the samples answer "unknown", and the
    ?reject=false one the closest class."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(rejecting_model))
    path = REPO / "insomnia" / "skyclass.insomnia.json"
    export = json.loads(path.read_text())
    assert export["_type"] == "export" and export["__export_format"] == 4
    requests = [r for r in export["resources"] if r["_type"] == "request"]
    kinds = {r["body"].get("mimeType") for r in requests if r["method"] == "POST"}
    assert {"application/octet-stream", "multipart/form-data", "application/json"} <= kinds
    ids = {r["_id"] for r in export["resources"]}
    assert all(r["parentId"] in ids for r in export["resources"] if r["parentId"])
    samples = [r for r in requests if r["body"].get("mimeType") == "application/json"]
    assert len(samples) == 3  # one image, a batch, and one with ?reject=false
    assert any("reject=false" in sample["url"] for sample in samples)
    assert '"unknown"' in export["resources"][0]["description"]
    with Client(app, stage_name="dev") as client:
        for sample in samples:
            url = sample["url"].replace("{{ _.base_url }}", "")
            response = post(client, sample["body"]["text"].encode(), "application/json", url)
            assert response.status_code == 200, response.body
            payload = json.loads(response.body)
            results = payload.get("results", [payload])
            top = json.loads(sample["body"]["text"]).get("top")
            for result in results.values() if isinstance(results, dict) else results:
                reject = "reject=false" not in url
                assert_result(result, top, "test-reject", known=False, reject=reject)
