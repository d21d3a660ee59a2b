"""Whatever a client sends, the answer is a JSON error (never a 500); importing the app for
`chalice package`/`deploy` loads nothing heavy; chalice's own deploy-time checks pass."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.deploy.validate import validate_route_content_types
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import app
from chalicelib.guard import guarded
from tests.api_client import API_DIR, multipart_body

CONTENT_TYPES = [
    "image/jpeg",
    "image/png",
    "application/octet-stream",
    "application/json",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    'multipart/form-data; boundary=""',
    "text/plain",
    "",
    ";;;",
    "image/jpeg; boundary=b",
]


@pytest.fixture(scope="module")
def client(exported_model: Path) -> Client:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKYCLASS_MODEL_PATH", str(exported_model))
        with Client(app, stage_name="dev") as test_client:
            yield test_client


def _bodies() -> st.SearchStrategy[bytes]:
    json_docs = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=6,
    )
    return st.one_of(
        st.binary(max_size=300),
        json_docs.map(lambda doc: json.dumps(doc).encode()),
        st.text(max_size=60).map(lambda text: json.dumps({"image": text}).encode()),
        st.binary(max_size=200).map(
            lambda data: multipart_body([("f", "x.jpg", "image/jpeg", data)], boundary="b")[0]
        ),
        st.binary(max_size=200).map(lambda data: b"\x89PNG\r\n\x1a\n" + data),
        st.binary(max_size=200).map(lambda data: b"\xff\xd8\xff\xe0" + data),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content_type=st.sampled_from(CONTENT_TYPES),
    body=_bodies(),
    query=st.sampled_from(["", "?top=1", "?top=x", "?top=-3", "?top=%00", "?top=%EF%BC%92"]),
)
def test_no_client_input_causes_a_500(client: Client, content_type: str, body: bytes, query: str):
    response = client.http.post(
        "/classify" + query, headers={"Content-Type": content_type}, body=body
    )
    assert response.status_code in (200, 400, 413, 415), response.body
    payload = json.loads(response.body)
    if response.status_code != 200:
        assert set(payload) == {"error", "message"}


def test_unexpected_failures_become_a_bare_json_500(capsys: pytest.CaptureFixture[str]):
    @guarded("/broken")
    def broken(log, request):
        raise RuntimeError("secret internals at /var/task/chalicelib")

    capsys.readouterr()
    response = broken(None)
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body == {
        "error": "internal_error",
        "message": "the server failed to handle this request",
    }
    # The request log still gets its line, with the error code an alarm can count.
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert (line["status"], line["error"], line["ErrorCode"]) == (
        500,
        "internal_error",
        "internal_error",
    )
    assert "secret" not in json.dumps(line)


def test_route_content_types_pass_chalices_deploy_validation():
    validate_route_content_types(app.routes, app.api.binary_types)  # raises if mixed
    assert "multipart/form-data" in app.api.binary_types
    for image_type in (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "image/tiff",
    ):
        assert image_type in app.api.binary_types
    assert len(app.api.binary_types) <= 25


def test_cli_mode_import_loads_no_model_and_honours_the_api_key_setting(tmp_path: Path):
    """What `chalice package`/`deploy` do: import app.py with AWS_CHALICE_CLI_MODE set. Neither
    onnxruntime nor numpy nor Pillow may load: that machine may not be able to (another CPU
    architecture), and a cold start should not pay for them before the first request."""
    script = (
        "import os, sys, app; "
        "print(int(any(m in sys.modules for m in ('onnxruntime', 'numpy', 'PIL'))), "
        "int(app.app.routes['/classify']['POST'].api_key_required), "
        "os.environ['OPENBLAS_NUM_THREADS'])"
    )
    for setting, expected in (("false", "0 0 1"), ("true", "0 1 1")):
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=API_DIR,
            env={
                "AWS_CHALICE_CLI_MODE": "true",
                "SKYCLASS_API_KEY_REQUIRED": setting,
                "SKYCLASS_MODEL_PATH": str(tmp_path / "absent.onnx"),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.split() == expected.split(), done.stderr
