"""POST /classify, GET /health and GET / through chalice's test client, with real images and a real
(tiny) exported model: every accepted form and every client error the API documents."""

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client
from PIL import Image

from app import app
from chalicelib import uploads
from shared import DEFAULT_LABELS
from shared.paths import REPO
from tests.api_client import multipart_body
from tests.imagegen import encode, synthetic_rgb

RESULT_KEYS = {"label", "confidence", "probabilities", "top", "model", "timing_ms"}


@pytest.fixture
def client(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    with Client(app, stage_name="dev") as test_client:
        yield test_client


def post(client: Client, body: bytes, content_type: str | None, path: str = "/classify"):
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.http.post(path, headers=headers, body=body)


def assert_result(result: dict, top: int = len(DEFAULT_LABELS)) -> None:
    assert set(result) == RESULT_KEYS
    assert list(result["probabilities"]) == list(DEFAULT_LABELS)  # labels from model metadata
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    ranked = [item["probability"] for item in result["top"]]
    assert len(ranked) == top and ranked == sorted(ranked, reverse=True)
    assert result["label"] == result["top"][0]["label"]
    assert result["confidence"] == max(result["probabilities"].values())
    assert result["model"] == {"version": "test-0", "created": "2026-01-01T00:00:00Z"}
    assert set(result["timing_ms"]) == {"decode", "preprocess", "inference"}
    assert all(v >= 0 for v in result["timing_ms"].values())


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert body["message"] and "Traceback" not in body["message"]
    assert response.headers["Content-Type"].startswith("application/json")
    return body


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


def test_all_forms_give_the_same_answer(client: Client, jpeg_bytes: bytes):
    raw = json.loads(post(client, jpeg_bytes, "image/jpeg").body)
    body, content_type = multipart_body([("file", "bird.jpg", "image/jpeg", jpeg_bytes)])
    multi = json.loads(post(client, body, content_type).body)
    as_json = json.dumps({"image": base64.b64encode(jpeg_bytes).decode()}).encode()
    from_json = json.loads(post(client, as_json, "application/json").body)
    for result in (raw, multi, from_json):
        assert_result(result)
        assert result["probabilities"] == raw["probabilities"]


def test_top_parameter(client: Client, jpeg_bytes: bytes):
    two = json.loads(post(client, jpeg_bytes, "image/jpeg", "/classify?top=2").body)
    assert_result(two, top=2)
    many = json.loads(post(client, jpeg_bytes, "image/jpeg", "/classify?top=99").body)
    assert_result(many)
    for bad in ("0", "-1", "abc", "1.5"):
        response = post(client, jpeg_bytes, "image/jpeg", f"/classify?top={bad}")
        assert_error(response, 400, "invalid_parameter")


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
    response = post(client, body, content_type, "/classify?top=1")
    assert response.status_code == 200, response.body
    payload = json.loads(response.body)
    assert payload["count"] == 4
    assert list(payload["results"]) == ["file/a.jpg", "file/b.png", "file/a.jpg#2", "other/c.png"]
    for result in payload["results"].values():
        assert_result(result, top=1)
    first, again = payload["results"]["file/a.jpg"], payload["results"]["file/a.jpg#2"]
    assert first["probabilities"] == again["probabilities"]


def test_multipart_part_without_filename_but_image_type_counts_as_file(
    client: Client, png_bytes: bytes
):
    body, content_type = multipart_body([("image", None, "image/png", png_bytes)])
    response = post(client, body, content_type)
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body))


@pytest.mark.parametrize("data_url", [False, True])
def test_json_base64_variants(client: Client, png_bytes: bytes, data_url: bool):
    text = base64.encodebytes(png_bytes).decode()  # wrapped at 76 columns, like `base64`
    if data_url:
        text = "data:image/png;base64," + text
    response = post(client, json.dumps({"image": text}).encode(), "application/json")
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body))


def test_json_urlsafe_base64(client: Client, png_bytes: bytes):
    text = base64.urlsafe_b64encode(png_bytes).decode()
    response = post(client, json.dumps({"image": text}).encode(), "application/json")
    assert response.status_code == 200, response.body


# --- client errors ----------------------------------------------------------------------------


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


def test_not_an_image_is_400(client: Client):
    body = assert_error(post(client, b"hello, not a picture", "image/jpeg"), 400, "invalid_image")
    assert "not a supported image" in body["message"]


def test_truncated_and_corrupt_images_are_400(client: Client, jpeg_bytes: bytes, png_bytes: bytes):
    truncated = assert_error(
        post(client, jpeg_bytes[: len(jpeg_bytes) // 2], "image/jpeg"), 400, "invalid_image"
    )
    assert "truncated or corrupt" in truncated["message"]
    corrupt_png = png_bytes[:100] + bytes(200) + png_bytes[300:]
    assert_error(post(client, corrupt_png, "image/png"), 400, "invalid_image")


def test_bad_part_in_multipart_names_the_part(client: Client, jpeg_bytes: bytes):
    body, content_type = multipart_body(
        [("file", "ok.jpg", "image/jpeg", jpeg_bytes), ("file", "notes.txt", "text/plain", b"hi")]
    )
    message = assert_error(post(client, body, content_type), 400, "invalid_image")["message"]
    assert "file/notes.txt" in message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"[1, 2]", "missing_image"),
        (b'{"picture": "abc"}', "missing_image"),
        (b'{"image": 42}', "missing_image"),
        (b'{"image": "not base64!!"}', "invalid_base64"),
        (b'{"image": "data:image/png,rawtext"}', "invalid_base64"),
        (b'{"image": ""}', "empty_body"),
        (b'{"image": "aGVsbG8="}', "invalid_image"),  # valid base64 of "hello"
    ],
)
def test_bad_json_bodies_are_400(client: Client, payload: bytes, code: str):
    assert_error(post(client, payload, "application/json"), 400, code)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "image/heic", None]
)
def test_unsupported_content_type_is_415_listing_the_supported(
    client: Client, jpeg_bytes: bytes, content_type: str | None
):
    message = assert_error(post(client, jpeg_bytes, content_type), 415, "unsupported_media_type")[
        "message"
    ]
    for supported in ("image/jpeg", "image/png", "multipart/form-data", "application/json"):
        assert supported in message


def test_body_over_the_limit_is_413(client: Client, jpeg_bytes: bytes):
    oversized = jpeg_bytes + bytes(uploads.MAX_BODY_BYTES + 1 - len(jpeg_bytes))
    body = assert_error(post(client, oversized, "image/jpeg"), 413, "payload_too_large")
    assert f"{uploads.MAX_BODY_BYTES:,}" in body["message"]
    at_limit = jpeg_bytes + bytes(uploads.MAX_BODY_BYTES - len(jpeg_bytes))  # trailing bytes are ok
    assert post(client, at_limit, "image/jpeg").status_code == 200


def test_too_many_pixels_is_413(client: Client):
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, "PNG")  # 64 MP, a few kB on the wire
    body = assert_error(post(client, buffer.getvalue(), "image/png"), 413, "image_too_large")
    assert "megapixels" in body["message"]


def test_too_many_files_is_413(client: Client, png_bytes: bytes):
    parts = [("file", f"{i}.png", "image/png", png_bytes) for i in range(uploads.MAX_FILES + 1)]
    body, content_type = multipart_body(parts)
    assert_error(post(client, body, content_type), 413, "too_many_files")


# --- model availability -------------------------------------------------------------------------


def test_missing_model_is_503_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
):
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(tmp_path / "nowhere" / "model.onnx"))
    with Client(app, stage_name="dev") as c:
        for response in (c.http.get("/health"), post(c, jpeg_bytes, "image/jpeg")):
            body = assert_error(response, 503, "model_unavailable")
            assert "python -m trainer.export RUN_DIR --publish" in body["message"]
            assert str(tmp_path) not in response.body.decode()


def test_broken_model_is_503_without_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
):
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"this is not an onnx file")
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(broken))
    with Client(app, stage_name="dev") as c:
        response = post(c, jpeg_bytes, "image/jpeg")
    assert_error(response, 503, "model_unavailable")
    assert str(tmp_path) not in response.body.decode()


# --- other routes -------------------------------------------------------------------------------


def test_health_reports_model_and_labels(client: Client):
    response = client.http.get("/health")
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["labels"] == list(DEFAULT_LABELS)
    assert body["model"]["version"] == "test-0"
    assert body["limits"]["max_body_bytes"] == uploads.MAX_BODY_BYTES


def test_page_is_self_contained_html(client: Client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert '<input id="file" type="file"' in html and "classify" in html
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
        "requestContext": {"resourcePath": "/classify", "httpMethod": "POST", "stage": "api"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    response = app(event, None)
    assert response["statusCode"] == 200, response
    assert_result(json.loads(response["body"]), top=2)


def test_insomnia_collection_is_importable_and_its_json_request_works(client: Client):
    path = REPO / "insomnia" / "skyclass.insomnia.json"
    export = json.loads(path.read_text())
    assert export["_type"] == "export" and export["__export_format"] == 4
    requests = [r for r in export["resources"] if r["_type"] == "request"]
    kinds = {r["body"].get("mimeType") for r in requests if r["method"] == "POST"}
    assert {"application/octet-stream", "multipart/form-data", "application/json"} <= kinds
    ids = {r["_id"] for r in export["resources"]}
    assert all(r["parentId"] in ids for r in export["resources"] if r["parentId"])
    (sample,) = [r for r in requests if r["body"].get("mimeType") == "application/json"]
    response = post(client, sample["body"]["text"].encode(), "application/json")
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body))


def test_a_batch_over_its_time_budget_stops_with_413(
    client: Client, monkeypatch: pytest.MonkeyPatch, png_bytes: bytes
):
    monkeypatch.setattr(uploads, "BATCH_SECONDS", 0.0)  # every image is "too slow"
    body, content_type = multipart_body(
        [("file", f"{i}.png", "image/png", png_bytes) for i in (1, 2)]
    )
    message = assert_error(post(client, body, content_type), 413, "batch_too_large")["message"]
    assert "1 of 2" in message
    single, content_type = multipart_body([("file", "1.png", "image/png", png_bytes)])
    assert post(client, single, content_type).status_code == 200  # the first file always runs
