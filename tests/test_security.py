"""Security properties of the service: it fetches nothing a client names, client file names never
reach the file system, error bodies show no internals, and the optional API key is applied when
the stage config enables it.

Runtime evidence comes from CPython audit hooks (PEP 578): every ``open``, ``os.*``, ``shutil.*``,
``socket.*`` and ``urllib.*`` event raised while a request is handled is recorded.
"""

import ast
import http.server
import json
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chalicelib import limits
from tests.api_client import API_DIR, multipart_body
from tests.imagegen import encode, synthetic_rgb
from tests.robust_support import ROOT, check_reply, classify, leaks, png_bomb
from tests.robust_support import served_model as served_model

PNG = encode(synthetic_rgb(40, 30, seed=5), "PNG")
_WATCHED = ("open", "os.", "shutil.", "tempfile.", "socket.", "urllib.", "http.", "subprocess.")


class _AuditLog:
    """Audit hooks cannot be removed, so one hook is installed once and records only while on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] | None = None
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.events is not None and event.startswith(_WATCHED):
            self.events.append((event, repr(args)))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, str]]]:
        events: list[tuple[str, str]] = []
        self.events = events
        try:
            yield events
        finally:
            self.events = None


_audit: _AuditLog | None = None


def audit() -> _AuditLog:
    global _audit
    if _audit is None:
        _audit = _AuditLog()
    return _audit


# --- no code path fetches a URL a client gives -------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback server that would hand out a valid image, so a fetch could not fail quietly."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bait_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bird.png"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("served_model")
def test_urls_given_by_a_client_are_refused_and_never_fetched(bait_url: str):
    documents = [
        {"image": bait_url},
        {"url": bait_url},
        {"image_url": bait_url},
        {"image": {"url": bait_url}},
        {"image": "file:///etc/passwd"},
        {"image": f"data:image/png;base64,{bait_url}"},
        {"image": f"data:text/uri-list,{bait_url}"},
    ]
    with audit().recording() as events:
        replies = [(doc, classify(json.dumps(doc), "application/json")) for doc in documents]
        as_field, content_type = multipart_body([("url", None, None, bait_url.encode())])
        replies.append((as_field, classify(as_field, content_type)))
        replies.append((bait_url, classify(bait_url.encode(), "text/uri-list")))
        replies.append((bait_url, classify(bait_url.encode(), "image/png")))
    for sent, reply in replies:
        check_reply(reply, json.dumps(sent) if isinstance(sent, dict) else sent)
        assert reply.status in (400, 415), (sent, reply.payload)
    assert _Recorder.hits == []
    network = [e for e in events if e[0].startswith(("socket.", "urllib.", "http."))]
    assert network == []


_NETWORK_MODULES = {
    "urllib",
    "urllib3",
    "requests",
    "http",
    "httpx",
    "aiohttp",
    "socket",
    "ssl",
    "ftplib",
    "smtplib",
    "boto3",
    "botocore",
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):  # also imports inside functions
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.add("<dynamic __import__>")
    return names


def test_service_code_imports_no_network_client():
    sources = [API_DIR / "app.py", *sorted((API_DIR / "chalicelib").glob("*.py"))]
    sources += sorted((ROOT / "shared").glob("*.py"))  # decode/preprocess run inside the service
    assert len(sources) > 10
    found = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name.split(".")[0] in _NETWORK_MODULES or name.startswith("<")
        )
        for path in sources
    }
    assert {path: names for path, names in found.items() if names} == {}


# --- multipart file names never reach the file system ------------------------------------------


@pytest.mark.usefixtures("served_model")
def test_hostile_filenames_are_only_keys_and_never_touch_the_file_system(tmp_path: Path):
    marker = f"skyclass-{uuid.uuid4().hex[:12]}"
    hostile = [
        f"../../../../etc/{marker}-passwd",
        f"/tmp/{marker}-abs",
        f"..\\..\\windows\\{marker}-win.ini",
        f"~/.ssh/{marker}-key",
        f"%2e%2e%2f{marker}-encoded",
        f"{marker}\x00-nul.png",
        f"{marker}-\u202etxt.png",  # right-to-left override: not printable, dropped
        f"C:{marker}-drive",
    ]
    assert len(hostile) <= limits.MAX_FILES
    body, content_type = multipart_body([("file", name, "image/png", PNG) for name in hostile])
    with audit().recording() as events:
        reply = classify(body, content_type)
        # RFC 2231 encoded form, which the parser decodes itself.
        encoded = (
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''..%2F..%2F"
            + marker.encode()
            + b"-rfc2231\r\nContent-Type: image/png\r\n\r\n"
            + PNG
            + b"\r\n--b--\r\n"
        )
        rfc2231 = classify(encoded, "multipart/form-data; boundary=b")
    check_reply(reply, body)
    check_reply(rfc2231, encoded)
    assert reply.status == 200 and rfc2231.status == 200, (reply.payload, rfc2231.payload)

    keys = list(reply.payload["results"])
    assert len(keys) == len(hostile)
    for key in keys:
        field, _, name = key.partition("/")
        assert field == "file" and marker in name
        assert "/" not in name and "\\" not in name and ".." not in name and name.isprintable()
    assert keys[0] == f"file/{marker}-passwd"  # the last path component, nothing else

    touched = [event for event in events if marker in event[1]]
    assert touched == [], touched
    assert not list(tmp_path.rglob(f"*{marker}*"))
    for folder in (Path("/tmp"), Path.cwd(), API_DIR):
        assert not list(folder.glob(f"*{marker}*")), folder


# --- error bodies never show paths or stack traces ---------------------------------------------


def _every_client_error() -> dict[str, tuple[bytes | str, str | None, dict[str, str] | None]]:
    many = multipart_body([("file", f"{i}.png", "image/png", PNG) for i in range(17)])
    return {
        "empty_body": (b"", "image/png", None),
        "invalid_image": (b"not an image", "image/png", None),
        "truncated": (PNG[:60], "image/png", None),
        "image_too_large": (png_bomb(), "image/png", None),
        "payload_too_large": (bytes(limits.MAX_BODY_BYTES + 1), "image/png", None),
        "unsupported_media_type": (PNG, "text/html", None),
        "invalid_multipart": (b"--x\r\n", "multipart/form-data; boundary=y", None),
        "no_file": (*multipart_body([("note", None, None, b"hi")]), None),
        "too_many_files": (*many, None),
        "invalid_json": ("{", "application/json", None),
        "missing_image": ('{"img": 1}', "application/json", None),
        "invalid_base64": ('{"image": "%%"}', "application/json", None),
        "invalid_parameter": (PNG, "image/png", {"top": "../../etc"}),
        "invalid_reject": (PNG, "image/png", {"reject": "/etc/passwd"}),
    }


def test_error_bodies_show_no_paths_or_stack_traces(
    served_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    bodies: list[str] = []
    for name, (body, content_type, query) in _every_client_error().items():
        reply = classify(body, content_type, query=query)
        check_reply(reply, body)  # includes the leak check against the request's own bytes
        assert reply.status in (400, 413, 415), (name, reply.payload)
        bodies.append(reply.text)
    # The server's own faults: no model, and a model file that is not a model.
    missing = tmp_path / "models" / "absent.onnx"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 not protobuf")
    for model in (missing, broken):
        monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(model))
        reply = classify(PNG, "image/png")
        assert reply.status == 503 and reply.payload["error"] == "model_unavailable"
        bodies.append(reply.text)
    for text in bodies:
        assert not leaks(text, b""), text
        assert str(tmp_path) not in text and str(served_model) not in text, text
        assert "Traceback" not in text and "line " not in text, text


# --- the optional API key -------------------------------------------------------------------------

# Run in a fresh interpreter: chalice applies the stage's environment variables and then imports
# app.py, exactly as `chalice package`/`chalice deploy` do; this test process has its app already.
_DESCRIBE = """
import json, os, sys
from chalice.cli.factory import CLIFactory
from chalice.deploy.swagger import CFNSwaggerGenerator
# environ=os.environ: what the chalice CLI passes, so the stage's variables reach app.py.
config = CLIFactory(sys.argv[1], environ=os.environ).create_config_obj(chalice_stage_name="dev")
app = config.chalice_app
swagger = CFNSwaggerGenerator().generate_swagger(app)
print(json.dumps({
    "required": {path: {m: r.api_key_required for m, r in routes.items()}
                 for path, routes in app.routes.items()},
    "paths": swagger["paths"],
    "definitions": swagger.get("securityDefinitions", {}),
}))
"""


def _describe_stage(tmp_path: Path, api_key_required: str) -> dict[str, Any]:
    """Routes and generated API Gateway swagger of a copy of classify_api/ whose dev stage sets
    ``SKYCLASS_API_KEY_REQUIRED`` as given, in .chalice/config.json."""
    project = tmp_path / f"project-{api_key_required}"
    shutil.copytree(
        API_DIR,
        project,
        ignore=shutil.ignore_patterns("vendor", "model", "__pycache__", "deployments", "deployed"),
    )
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["dev"]["environment_variables"]["SKYCLASS_API_KEY_REQUIRED"] = api_key_required
    config_path.write_text(json.dumps(config))
    completed = subprocess.run(
        [sys.executable, "-c", _DESCRIBE, str(project)],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_api_key_is_required_on_classify_when_the_stage_config_enables_it(tmp_path: Path):
    committed = json.loads((API_DIR / ".chalice" / "config.json").read_text())
    assert committed["stages"]["dev"]["environment_variables"]["SKYCLASS_API_KEY_REQUIRED"] in (
        "false",
        "true",
    )
    enabled = _describe_stage(tmp_path, "true")
    disabled = _describe_stage(tmp_path, "false")

    assert enabled["required"]["/classify"]["POST"] is True
    assert not disabled["required"]["/classify"]["POST"]
    for described in (enabled, disabled):  # health checks and the page stay open
        assert not described["required"]["/health"]["GET"]
        assert not described["required"]["/"]["GET"]
        assert "security" not in described["paths"]["/health"]["get"]
    # What API Gateway enforces: the x-api-key header on POST /classify.
    assert enabled["paths"]["/classify"]["post"]["security"] == [{"api_key": []}]
    assert enabled["definitions"]["api_key"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }
    assert "security" not in disabled["paths"]["/classify"]["post"]
    assert disabled["definitions"] == {}
    # Browsers may send the key cross-origin: the preflight allows the header.
    preflight = enabled["paths"]["/classify"]["options"]
    allowed = preflight["x-amazon-apigateway-integration"]["responses"]["default"]
    headers = allowed["responseParameters"]["method.response.header.Access-Control-Allow-Headers"]
    assert "x-api-key" in headers.lower()


@pytest.mark.usefixtures("served_model")
def test_requests_carrying_an_api_key_are_served_normally():
    """API Gateway checks the key and passes the header on; the app must not trip over it."""
    reply = classify(PNG, "image/png", headers={"x-api-key": "k" * 40})
    check_reply(reply, PNG)
    assert reply.status == 200
