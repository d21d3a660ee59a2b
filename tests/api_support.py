"""What the API tests share: requests through chalice's test client, and what every answer,
error and log line must look like. (No tests here.)"""

import base64
import json
from typing import Any

import pytest
from chalice.test import Client

from shared import DEFAULT_LABELS
from tests.robust_support import RESULT_KEYS

# Words from Python or Pillow internals that a message for people must never contain.
JARGON = ("OSError", "SyntaxError", "Error)", "decompression bomb", "DOS attack", "178956970")


def post(
    client: Client,
    body: bytes,
    content_type: str | None,
    path: str = "/classify",
    headers: dict[str, str] | None = None,
):
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return client.http.post(path, headers=all_headers, body=body)


def post_json(client: Client, document: Any, path: str = "/classify"):
    return post(client, json.dumps(document).encode(), "application/json", path)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_result(
    result: dict,
    top: int | None = None,
    version: str = "test-0",
    known: bool = True,
    reject: bool = True,
    labels: tuple[str, ...] = DEFAULT_LABELS,
) -> None:
    """A classification: one of the classes (``known``), or "unknown" with its closest class
    and every probability still given (``reject=False``: the closest class as the label)."""
    assert set(result) == RESULT_KEYS, result
    assert list(result["probabilities"]) == list(labels)  # labels from model metadata
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    ranked = [item["probability"] for item in result["top"]]
    assert len(ranked) == (len(labels) if top is None else top)
    assert ranked == sorted(ranked, reverse=True)
    assert result["known"] is known, result
    assert result["closest"] == result["top"][0]["label"]
    assert result["label"] == (result["closest"] if known or not reject else "unknown"), result
    assert result["known_score"] is None or isinstance(result["known_score"], float)
    assert result["confidence"] == max(result["probabilities"].values())
    assert result["confidence"] == result["probabilities"][result["closest"]]
    assert result["model"]["version"] == version
    assert set(result["timing_ms"]) == {"decode", "preprocess", "inference"}
    assert all(v >= 0 for v in result["timing_ms"].values())


def assert_plain(message: str) -> str:
    """A message for people: no Python or Pillow jargon, no traceback."""
    assert message and "Traceback" not in message
    assert not any(word in message for word in JARGON), message
    return message


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert set(body) == {"error", "message"}
    assert body["error"] == code, body
    assert_plain(body["message"])
    assert response.headers["Content-Type"].startswith("application/json")
    return body


def assert_entry_error(entry: dict, code: str) -> str:
    assert set(entry) == {"error", "message"} and entry["error"] == code, entry
    return assert_plain(entry["message"])


def batch_of(response, count: int, failed: int) -> Any:
    assert response.status_code == 200, response.body
    payload = json.loads(response.body)
    assert set(payload) == {"count", "classified", "failed", "results"}
    assert (payload["count"], payload["classified"], payload["failed"]) == (
        count,
        count - failed,
        failed,
    )
    return payload["results"]


def request_logs(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """The JSON lines the handler wrote to stdout since the last call."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def assert_emf(line: dict) -> None:
    """CloudWatch Embedded Metric Format: every metric and dimension it names is a root member."""
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "skyclass"
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(line[key], str) for key in dimension_set)
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], int | float), metric


def emf_metrics(line: dict) -> dict[str, tuple[str, ...]]:
    return {
        metric["Name"]: tuple(directive["Dimensions"][0])
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
