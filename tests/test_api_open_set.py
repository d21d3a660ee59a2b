"""Open set, the API's half: every answer says whether the image is one of the model's
classes; "unknown" answers for raw, multipart, JSON and batch requests, ``reject`` in the query,
a multipart field or a JSON key (the query wins), /health's rejection block, older exports
without a rule, and the request log counting unknown answers.

Real models through chalice's test client and onnxruntime (``tests/conftest.py``): the suite's
MobileNetV2 export with a max_probability rule no image passes (``rejecting_model``) or every
image passes (``accepting_model``), and a tiny graph with a real ``known_score`` output that finds
white images known and black ones unknown (``known_score_model``).
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from shared.model_contract import Rejection
from tests.api_client import multipart_body
from tests.api_support import (
    assert_emf,
    assert_entry_error,
    assert_error,
    assert_result,
    b64,
    batch_of,
    emf_metrics,
    post,
    post_json,
    request_logs,
)
from tests.model_support import DETAILS, REJECT_ALL, with_rejection

Serve = Callable[[Path], Client]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``serve(model)``: a test client answering with that model (switchable within a test: the
    model store reloads when the path changes)."""
    with Client(app, stage_name="dev") as client:

        def use(model: Path) -> Client:
            monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(model))
            return client

        yield use


def forms(data: bytes, content_type: str) -> dict[str, tuple[bytes, str]]:
    """One image as a raw body, a one-file multipart body and JSON."""
    return {
        "raw": (data, content_type),
        "multipart": multipart_body([("file", "photo", content_type, data)]),
        "json": (json.dumps({"image": b64(data)}).encode(), "application/json"),
    }


# --- the "unknown" answer -------------------------------------------------------------------


def test_an_unknown_image_in_every_form_keeps_closest_and_probabilities(
    serve: Serve, rejecting_model: Path, exported_model: Path, jpeg_bytes: bytes
):
    closed = json.loads(post(serve(exported_model), jpeg_bytes, "image/jpeg").body)
    client = serve(rejecting_model)
    for form, (body, content_type) in forms(jpeg_bytes, "image/jpeg").items():
        response = post(client, body, content_type)
        assert response.status_code == 200, (form, response.body)
        answer = json.loads(response.body)
        assert_result(answer, version="test-reject", known=False)
        assert answer["label"] == "unknown", form
        # The same weights: the closest class and every probability are the closed-set answer's.
        assert answer["closest"] == closed["label"] and answer["top"] == closed["top"], form
        assert answer["probabilities"] == closed["probabilities"], form
        assert answer["known_score"] == answer["confidence"] < REJECT_ALL  # max_probability


def test_batches_answer_known_and_unknown_per_file(
    serve: Serve, known_score_model: Path, white_png: bytes, black_png: bytes
):
    client = serve(known_score_model)
    white = json.loads(post(client, white_png, "image/png").body)
    black = json.loads(post(client, black_png, "image/png").body)
    assert_result(white, version="score-1", known=True)
    assert_result(black, version="score-1", known=False)
    body, content_type = multipart_body(
        [
            ("file", "white.png", "image/png", white_png),
            ("file", "black.png", "image/png", black_png),
            ("file", "notes.txt", "text/plain", b"not an image"),
        ]
    )
    results = batch_of(post(client, body, content_type), 3, failed=1)
    assert_entry_error(results["file/notes.txt"], "invalid_image")
    listed = batch_of(post_json(client, {"images": [b64(white_png), b64(black_png)]}), 2, 0)
    named = batch_of(
        post_json(client, {"images": {"w": b64(white_png), "b": b64(black_png)}}), 2, 0
    )
    for known, unknown in (
        (results["file/white.png"], results["file/black.png"]),
        (listed[0], listed[1]),
        (named["w"], named["b"]),
    ):
        assert_result(known, version="score-1", known=True)
        assert_result(unknown, version="score-1", known=False)
        assert (known["label"], unknown["label"]) == (white["label"], "unknown")
        assert unknown["closest"] == black["closest"]
        assert unknown["probabilities"] == black["probabilities"]


def test_a_known_score_rule_reads_the_models_own_output(
    serve: Serve, known_score_model: Path, white_png: bytes, black_png: bytes
):
    """The black image is a confident class by its probabilities (the issue's airliner) and
    still unknown: the decision is the graph's ``known_score`` against the threshold, 0."""
    client = serve(known_score_model)
    white = json.loads(post(client, white_png, "image/png").body)
    black = json.loads(post(client, black_png, "image/png").body)
    assert white["known_score"] == pytest.approx(2.4, abs=0.1) and white["known"] is True
    assert black["known_score"] == pytest.approx(-2.0, abs=0.1) and black["known"] is False
    assert black["confidence"] > 0.5 and black["known_score"] != black["confidence"]


# --- reject: query string, multipart field, JSON key -----------------------------------------


@pytest.mark.parametrize(
    ("value", "reject"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("", True),  # empty means absent: the default, rejection on
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_reject_spellings_in_the_query(
    serve: Serve, rejecting_model: Path, png_bytes: bytes, value: str, reject: bool
):
    response = post(serve(rejecting_model), png_bytes, "image/png", f"/classify?reject={value}")
    assert response.status_code == 200, response.body
    assert_result(json.loads(response.body), version="test-reject", known=False, reject=reject)


@pytest.mark.parametrize(
    "bad", ["maybe", "2", "on", "off", "t", "tru", "falsee", "%20false", "false%20", "%EF%BC%91"]
)
def test_reject_must_be_one_of_its_spellings_in_the_query(
    serve: Serve, rejecting_model: Path, png_bytes: bytes, bad: str
):
    response = post(serve(rejecting_model), png_bytes, "image/png", f"/classify?reject={bad}")
    message = assert_error(response, 400, "invalid_parameter")["message"]
    assert "reject in the query string must be true or false" in message


def test_reject_from_a_multipart_field_and_a_json_key(
    serve: Serve, rejecting_model: Path, png_bytes: bytes, jpeg_bytes: bytes
):
    client = serve(rejecting_model)
    for value, reject in (("false", False), ("No", False), ("1", True), ("yes", True)):
        body, content_type = multipart_body(
            [("file", "a.png", "image/png", png_bytes), ("reject", None, None, value.encode())]
        )
        answer = json.loads(post(client, body, content_type).body)
        assert_result(answer, version="test-reject", known=False, reject=reject)
    for value, reject in ((False, False), ("false", False), (0, False), (True, True), (1, True)):
        answer = json.loads(post_json(client, {"image": b64(png_bytes), "reject": value}).body)
        assert_result(answer, version="test-reject", known=False, reject=reject)
    # A batch: every file answers its closest class.
    body, content_type = multipart_body(
        [
            ("reject", None, None, b"false"),
            ("file", "a.png", "image/png", png_bytes),
            ("file", "b.jpg", "image/jpeg", jpeg_bytes),
        ]
    )
    for result in batch_of(post(client, body, content_type), 2, failed=0).values():
        assert_result(result, version="test-reject", known=False, reject=False)
    document = {"images": [b64(png_bytes), b64(jpeg_bytes)], "reject": "false", "top": 1}
    for result in batch_of(post_json(client, document), 2, failed=0):
        assert_result(result, top=1, version="test-reject", known=False, reject=False)


def test_the_query_string_reject_wins_over_the_body(
    serve: Serve, rejecting_model: Path, png_bytes: bytes
):
    client = serve(rejecting_model)

    def answer(path: str, body_reject: object) -> dict:
        response = post_json(client, {"image": b64(png_bytes), "reject": body_reject}, path)
        assert response.status_code == 200, response.body
        return json.loads(response.body)

    assert answer("/classify?reject=true", False)["label"] == "unknown"
    closest = answer("/classify?reject=false", True)
    assert closest["label"] == closest["closest"] != "unknown"
    # With the query's value given, the body's is not read (not even checked).
    assert answer("/classify?reject=0", "maybe")["label"] == closest["closest"]
    # An empty query value is no value: the body's applies.
    assert answer("/classify?reject=", False)["label"] == closest["closest"]
    body, content_type = multipart_body(
        [("reject", None, None, b"false"), ("file", "a.png", "image/png", png_bytes)]
    )
    response = post(client, body, content_type, "/classify?reject=yes")
    assert json.loads(response.body)["label"] == "unknown"


@pytest.mark.parametrize("bad", ["maybe", 2, -1, 1.0, 0.0, [], {}, " true", "ｔｒｕｅ"])
def test_reject_must_be_one_of_its_spellings_in_the_body(
    serve: Serve, rejecting_model: Path, png_bytes: bytes, bad: object
):
    client = serve(rejecting_model)
    response = post_json(client, {"image": b64(png_bytes), "reject": bad})
    message = assert_error(response, 400, "invalid_parameter")["message"]
    assert "reject in the body must be true or false" in message
    batch = {"images": [b64(png_bytes)], "reject": bad}
    assert_error(post_json(client, batch), 400, "invalid_parameter")  # the request, not a file
    if isinstance(bad, str):
        body, content_type = multipart_body(
            [("file", "a.png", "image/png", png_bytes), ("reject", None, None, bad.encode())]
        )
        assert_error(post(client, body, content_type), 400, "invalid_parameter")


# --- models without a rule (older exports) and /health -----------------------------------------


def test_an_older_export_without_a_rule_answers_known_and_says_so_in_health(
    serve: Serve, exported_model: Path, accepting_model: Path, png_bytes: bytes
):
    client = serve(exported_model)
    for path in ("/classify", "/classify?reject=false", "/classify?reject=true"):
        answer = json.loads(post(client, png_bytes, "image/png", path).body)
        assert_result(answer, known=True)
        assert answer["known_score"] is None and answer["label"] == answer["closest"]
    health = json.loads(client.http.get("/health").body)
    assert health["rejection"] is None
    assert "exported without a rejection rule" in health["rejection_note"]
    assert "every answer is one of its classes" in health["rejection_note"]
    assert "re-export" in health["rejection_note"]
    # A rule at 0 (every image passes): known, with its score given.
    client = serve(accepting_model)
    answer = json.loads(post(client, png_bytes, "image/png").body)
    assert_result(answer, version="test-accept", known=True)
    assert answer["known_score"] == answer["confidence"]


def test_health_gives_the_rejection_rule_and_says_how_it_works(
    serve: Serve, rejecting_model: Path, known_score_model: Path
):
    health = json.loads(serve(rejecting_model).http.get("/health").body)
    assert health["rejection"] == {
        "method": "max_probability",
        "score": "max_probability",
        "threshold": REJECT_ALL,
        "accept_rate": 0.95,
        "details": DETAILS,
    }
    note = health["rejection_note"]
    assert "top class probability is below 1.01" in note and "95%" in note
    assert '"label": "unknown"' in note and "reject=false" in note
    health = json.loads(serve(known_score_model).http.get("/health").body)
    assert (health["rejection"]["score"], health["rejection"]["threshold"]) == ("known_score", 0.0)
    assert health["rejection"]["method"] == "background_class"
    assert "known_score (the model's own output) is below 0" in health["rejection_note"]


def test_health_answers_json_when_the_rules_figures_hold_nan(
    serve: Serve, exported_model: Path, tmp_path: Path
):
    """json.dumps writes NaN for a figure the trainer could not compute (an AUROC without
    negatives); JSON has no NaN, so /health gives null instead of failing."""
    details = {"auroc": float("nan"), "per_kind": {"kite": float("inf"), "cloud": 0.5}}
    rule = Rejection("max_probability", "max_probability", 0.4, 0.95, details)
    model = with_rejection(exported_model, tmp_path / "model.onnx", rule, "nan-1")
    response = serve(model).http.get("/health")
    assert response.status_code == 200, response.body
    rejection = json.loads(response.body)["rejection"]
    assert rejection["details"] == {"auroc": None, "per_kind": {"kite": None, "cloud": 0.5}}


def test_a_known_score_rule_on_a_model_without_that_output_is_503(
    serve: Serve, exported_model: Path, tmp_path: Path, png_bytes: bytes
):
    rule = Rejection("background_class", "known_score", 0.0, 0.95, {})
    model = with_rejection(exported_model, tmp_path / "model.onnx", rule, "broken-1")
    client = serve(model)
    for response in (client.http.get("/health"), post(client, png_bytes, "image/png")):
        message = assert_error(response, 503, "model_unavailable")["message"]
        assert "rejection rule reads an output 'known_score' it does not have" in message
        assert "re-export it" in message and str(tmp_path) not in message


# --- the request log --------------------------------------------------------------------------


def test_the_log_line_counts_unknown_answers(
    serve: Serve,
    rejecting_model: Path,
    known_score_model: Path,
    capsys: pytest.CaptureFixture[str],
    white_png: bytes,
    black_png: bytes,
):
    client = serve(rejecting_model)
    client.http.get("/health")
    request_logs(capsys)
    answer = json.loads(post(client, white_png, "image/png").body)
    closed = json.loads(post(client, white_png, "image/png", "/classify?reject=false").body)
    one, asked_closed = request_logs(capsys)
    assert (answer["label"], closed["label"]) == ("unknown", closed["closest"])
    for line, reject in ((one, True), (asked_closed, False)):
        # The verdict is counted, whatever the client asked to be told.
        assert (line["label"], line["known"], line["reject"]) == ("unknown", False, reject)
        assert line["confidence"] == answer["confidence"]
        assert (line["Label"], line["Classifications"], line["Unknown"]) == ("unknown", 1, 1)
        assert line["labels"] == {"unknown": 1}
        assert_emf(line)
        assert emf_metrics(line)["Unknown"] == ("Route",)
    client = serve(known_score_model)
    client.http.get("/health")
    request_logs(capsys)
    known_label = json.loads(post(client, white_png, "image/png").body)["label"]
    body, content_type = multipart_body(
        [
            ("file", "w.png", "image/png", white_png),
            ("file", "b.png", "image/png", black_png),
            ("file", "b2.png", "image/png", black_png),
        ]
    )
    batch_of(post(client, body, content_type), 3, failed=0)
    known_line, batch_line = request_logs(capsys)
    assert (known_line["label"], known_line["known"], known_line["Unknown"]) == (
        known_label,
        True,
        0,
    )
    assert batch_line["labels"] == {known_label: 1, "unknown": 2}
    assert (batch_line["Label"], batch_line["Classifications"], batch_line["Unknown"]) == (
        "(mixed)",
        3,
        2,
    )
    assert "known" not in batch_line and "label" not in batch_line  # single-image fields
    assert_emf(batch_line)


def test_a_refused_request_logs_no_unknown_metric(
    serve: Serve, rejecting_model: Path, capsys: pytest.CaptureFixture[str], png_bytes: bytes
):
    client = serve(rejecting_model)
    request_logs(capsys)
    assert_error(
        post(client, png_bytes, "image/png", "/classify?reject=maybe"), 400, "invalid_parameter"
    )
    (line,) = request_logs(capsys)
    assert line["error"] == "invalid_parameter" and "Unknown" not in line and "known" not in line
    assert "Unknown" not in emf_metrics(line)
    assert_emf(line)
