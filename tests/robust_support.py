"""Helpers for the robustness tests: one request through the Lambda handler, the checks every
response must pass, memory readings and the env-var counts CI lowers.

(No tests here; the file name keeps it beside the robustness tests it serves.)
"""

import base64
import functools
import json
import os
import re
import struct
import sys
import time
import zlib
from collections.abc import Mapping
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
# this machine. A client may send any of them itself (a field named "x.py" is echoed in its key),
# so a marker only counts as a leak when the request did not contain it.
_LEAK_MARKERS = ("Traceback", 'File "', ".py", str(ROOT), sys.prefix, "site-packages", "/work")
_RESULT_KEYS = {"label", "confidence", "probabilities", "top", "model", "timing_ms"}


@pytest.fixture
def served_model(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The suite's real tiny exported model, served by the app for this test."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
    return exported_model


_shared: dict[str, Path] = {}


@pytest.fixture(scope="session")
def discriminating_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported MobileNetV2 whose answers differ from image to image.

    The suite's ``exported_model`` is untrained: its probabilities come out the same to six
    decimals for every picture, so a request answered with another request's result would go
    unnoticed. This one has its head fitted on generated images (``tests.runfactory``).
    Built once per session: each test module that imports the fixture gets its own copy of the
    fixture definition, so the model is kept here.
    """
    if "discriminating" not in _shared:
        from shared import DEFAULT_SPEC, ModelContract
        from tests.runfactory import make_run
        from trainer.checkpoint import model_from_checkpoint
        from trainer.onnx_export import export_onnx

        run = make_run(tmp_path_factory.mktemp("robust-run"))
        payload = run.payload
        info = {"model_version": "robust-1", "run_id": payload["run_id"]}
        info["created"] = payload["created"]
        contract = ModelContract(tuple(payload["labels"]), DEFAULT_SPEC, info)
        model = model_from_checkpoint(payload)
        _shared["discriminating"] = export_onnx(model, contract, run.run_dir / "model.onnx")
    return _shared["discriminating"]


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
    return Reply(response["statusCode"], response["headers"], json_body(response), text, seconds)


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


def leaks(text: str, sent: bytes | str) -> list[str]:
    """The leak markers in a response body that the request did not bring itself."""
    echoed = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else sent
    return [m for m in _LEAK_MARKERS if m in text and m not in echoed]


def check_reply(reply: Reply, sent: bytes | str) -> None:
    """What every /classify response must be: a result (200) or a JSON client error (4xx),
    within the time bound, and never showing internals."""
    assert reply.status == 200 or 400 <= reply.status < 500, (reply.status, reply.text[:300])
    assert reply.seconds < MAX_SECONDS, f"{reply.seconds:.2f} s for status {reply.status}"
    assert reply.headers["Content-Type"].startswith("application/json")
    if reply.status == 200:
        results = reply.payload.get("results", {"single": reply.payload})
        assert results and all(set(r) == _RESULT_KEYS for r in results.values()), reply.payload
    else:
        assert set(reply.payload) == {"error", "message"}, reply.payload
        assert all(isinstance(v, str) and v for v in reply.payload.values()), reply.payload
    assert not leaks(reply.text, sent), (leaks(reply.text, sent), reply.text[:300])


def stable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its timings: what must be identical every time for the same image."""
    return {k: v for k, v in result.items() if k != "timing_ms"}


def _status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, f"no {field} in /proc/self/status"
    return int(match.group(1))


def rss_kib() -> int:
    """This process's resident set size now (Linux)."""
    return _status_kib("VmRSS")


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (VmHWM), so :func:`peak_rss_kib` covers what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Figures for people reading the run, written to the terminal past pytest's capture."""
    plugins = request.config.pluginmanager
    capture, terminal = plugins.getplugin("capturemanager"), plugins.getplugin("terminalreporter")
    if capture is None or terminal is None:
        return
    with capture.global_and_fixture_disabled():
        terminal.ensure_newline()
        terminal.write_line(f"[robustness] {line}")
