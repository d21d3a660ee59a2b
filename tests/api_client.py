"""Helpers for the API tests: multipart bodies as clients build them, and a `chalice local` server.
(No tests here.)
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from shared.paths import APP_DIR as API_DIR
from shared.paths import REPO

# (field name, filename or None, part Content-Type or None, data)
FilePart = tuple[str, str | None, str | None, bytes]


def multipart_body(
    parts: Sequence[FilePart], boundary: str = "----skyclassBoundary7MA4YWxkTrZu0gW"
) -> tuple[bytes, str]:
    """Encode parts the way curl -F and browsers do; returns ``(body, content_type_header)``."""
    chunks = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP request with urllib; returns status, headers and body even for errors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@contextlib.contextmanager
def chalice_local(model_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run `chalice local` in classify_api/ on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "SKYCLASS_MODEL_PATH": str(model_path), "PYTHONUNBUFFERED": "1"}
    # This checkout's shared/ first, whatever checkout the venv's editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [str(Path(sys.executable).with_name("chalice")), "local", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-autoreload"]
    # A file, not a pipe: a pipe nobody reads would block the server once its buffer fills.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=API_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_healthy(process, base, log, timeout)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(
    process: subprocess.Popen, base: str, log: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"chalice local exited with {process.returncode}:\n{output}")
        try:
            status, _, body = http("GET", base + "/health")
            if status == 200 and json.loads(body)["status"] == "ok":
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"chalice local did not answer /health within {timeout} s")
        time.sleep(0.2)
