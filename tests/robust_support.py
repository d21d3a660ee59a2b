"""Helpers for the robustness tests: one request through the Lambda handler, the checks every
response must pass, memory readings and the env-var counts CI lowers.

(No tests here; the file name keeps it beside the robustness tests it serves.)
"""

import ast
import base64
import functools
import json
import os
import re
import struct
import sys
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app import app
from bundler.probe import proxy_event
from shared.paths import REPO as ROOT
from tests.api_client import multipart_body
from tests.bundle_support import json_body

# The per-request bound: no response, valid or not, may take longer than this.
MAX_SECONDS = 2.0

# Strings that only appear in a body when internals leak: a traceback, a source file, a path on
# this machine. A client may send any of them itself (a Content-Type ".PY" is quoted back as
# '.py'), so echoes are told apart from leaks: see :func:`leaks`.
_LEAK_MARKERS = ("Traceback", 'File "', ".py", str(ROOT), sys.prefix, "site-packages", "/work")
# How messages quote a client's value (chalicelib.errors.shown): a Python repr, maybe cut with "…".
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Every key of a classification answer (shared.predictor.Predictor builds them in one place).
RESULT_KEYS = {
    "label",
    "known",
    "closest",
    "known_score",
    "confidence",
    "probabilities",
    "top",
    "model",
    "timing_ms",
}


@pytest.fixture
def served_model(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The suite's real tiny exported model, served by the app for this test."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    return exported_model


@pytest.fixture(scope="session")
def pixel_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX model whose answer moves with every input pixel: softmax of one random linear
    map of the whole 3x224x224 input, with the skyclass contract in its metadata.

    Built with ``onnx.helper`` (no trainer, no torch): the untrained ``exported_model`` answers
    the same for every picture, so it cannot show that two uploads were seen alike or not.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shared import DEFAULT_LABELS, DEFAULT_SPEC, ModelContract

    features = int(np.prod(DEFAULT_SPEC.input_shape))
    # Scaled so the logits spread over a few units: confident enough to rank, never saturated.
    weights = np.random.default_rng(0).normal(0, 0.004, (features, len(DEFAULT_LABELS)))
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pixel-model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *DEFAULT_SPEC.input_shape])],
        [
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, [1, len(DEFAULT_LABELS)]
            )
        ],
        [numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = {"model_version": "pixel-1", "run_id": "pixel", "created": "2026-01-01T00:00:00Z"}
    helper.set_model_props(model, ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, info).to_metadata())
    path = tmp_path_factory.mktemp("pixel-model") / "model.onnx"
    onnx.save(model, path)
    return path


def env_count(name: str, default: int) -> int:
    """A test's size: the full ``default`` unless CI lowers it through ``name``."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    payload: Any  # the decoded JSON body
    text: str  # the body as sent, for leak checks
    seconds: float
    # Every value the client sent besides the body (headers, query): what the answer may echo.
    sent: tuple[str, ...] = ()


def classify(
    body: bytes | str,
    content_type: str | None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST /classify through ``app(event, context)`` exactly as API Gateway invokes Lambda.

    ``bytes`` bodies travel base64-encoded (a binary media type), ``str`` bodies as text.
    """
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    event = proxy_event("POST", "/classify", body, headers=all_headers, query=query)
    started = time.perf_counter()
    response = app(event, None)
    seconds = time.perf_counter() - started
    text = response["body"]
    sent = (*all_headers.values(), *(query or {}).values())
    return Reply(
        response["statusCode"], response["headers"], json_body(response), text, seconds, sent
    )


def pack(form: str, data: bytes, content_type: str) -> tuple[bytes | str, str]:
    """``data`` as a client sends it: ``raw``, as a ``multipart`` file, or base64 in ``json``
    (as text: API Gateway passes application/json through as a string)."""
    if form == "multipart":
        return multipart_body([("file", "upload.img", content_type, data)])
    if form == "json":
        return json.dumps({"image": base64.b64encode(data).decode()}), "application/json"
    return data, content_type


def _png_chunk(kind: bytes, body: bytes) -> bytes:
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
    chunks = [(b"IHDR", header), (b"IDAT", idat), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(kind, body) for kind, body in chunks)


def leaks(text: str, sent: bytes | str | Sequence[bytes | str]) -> list[str]:
    """The leak markers in a response body that are not the client's own values echoed.

    A message quotes what the client sent (``Content-Type '.py' is not supported``): a quoted
    segment that is part of something the client sent (case aside: media types are lowered; and
    maybe cut short with "…") is an echo and is set aside. A marker anywhere else in a message or
    value is a leak, whatever the client sent. Result keys (the client's file names) are echoes by
    construction and not searched.
    """
    values = [sent] if isinstance(sent, bytes | str) else list(sent)
    client = [(v.decode("utf-8", "replace") if isinstance(v, bytes) else v).lower() for v in values]
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    found = []
    for string in _strings(payload):
        rest = _QUOTED.sub(
            lambda quoted: "''" if _echoed(quoted.group(), client) else quoted.group(), string
        )
        found += [marker for marker in _LEAK_MARKERS if marker.lower() in rest.lower()]
    return sorted(set(found))


def _echoed(quoted: str, client: list[str]) -> bool:
    try:
        value = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return False
    core = str(value).removesuffix("…").lower()
    return any(core in sent for sent in client)


def _strings(payload: Any) -> Iterator[str]:
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, list):
        for item in payload:
            yield from _strings(item)
    elif isinstance(payload, dict):
        for key, value in payload.items():
            if key != "results" or not isinstance(value, dict):
                yield key
                yield from _strings(value)
            else:
                for result in value.values():
                    yield from _strings(result)


def check_reply(reply: Reply, sent: bytes | str) -> None:
    """What every /classify response must be: a result (200) or a JSON client error (4xx),
    within the time bound, and never showing internals."""
    assert reply.status == 200 or 400 <= reply.status < 500, (reply.status, reply.text[:300])
    assert reply.seconds < MAX_SECONDS, f"{reply.seconds:.2f} s for status {reply.status}"
    assert reply.headers["Content-Type"].startswith("application/json")
    if reply.status == 200:
        results = reply.payload.get("results", {"single": reply.payload})
        entries = results.values() if isinstance(results, dict) else results
        # A batch answers each file with a result or that file's own {error, message}.
        assert entries and all(set(r) == RESULT_KEYS or _is_error(r) for r in entries), (
            reply.payload
        )
        if "results" in reply.payload:
            failed = sum(1 for r in entries if _is_error(r))
            assert reply.payload["failed"] == failed, reply.payload
            assert reply.payload["classified"] + failed == reply.payload["count"] == len(entries)
    else:
        assert set(reply.payload) == {"error", "message"}, reply.payload
        assert all(isinstance(v, str) and v for v in reply.payload.values()), reply.payload
    echoed = (sent, *reply.sent)
    assert not leaks(reply.text, echoed), (leaks(reply.text, echoed), reply.text[:300])


def _is_error(result: Any) -> bool:
    return set(result) == {"error", "message"} and all(
        isinstance(v, str) and v for v in result.values()
    )


def stable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its timings: what must be identical every time for the same image."""
    return {k: v for k, v in result.items() if k != "timing_ms"}


def _status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, f"no {field} in /proc/self/status"
    return int(match.group(1))


FIGURES = "robustness"


def rss_kib() -> int:
    """This process's resident set size now (Linux)."""
    return _status_kib("VmRSS")


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (VmHWM), so :func:`peak_rss_kib` covers what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Figures for people reading the run: printed in the summary at the end of the session
    (``conftest.pytest_terminal_summary``), from every worker when pytest-xdist runs the suite."""
    request.node.user_properties.append((FIGURES, line))
