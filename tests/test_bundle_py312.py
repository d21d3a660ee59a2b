"""The python3.12 bundle when no venv here runs 3.12 (.venv-deploy takes the newest Python, 3.13).

chalice packages only for the Python running it, so for a runtime without a venv the app is
prepared and laid out as chalice would zip it (bundler.vendor.zip_layout), measured, scanned, and
run by a real python3.12 in isolation: the `--python 3.12` path of scripts/build_bundle. When the
deploy venv is 3.12 itself, tests/test_bundle.py checks the real chalice-built zip instead. The
3.12 runtime packages come from scripts/setup (.runtimes/py312), never from the network here.
"""

from pathlib import Path

import pytest

from bundler.build import Bundle
from bundler.elf import elf_files_in_tree
from bundler.runtime import target_for
from bundler.sizes import format_table
from bundler.vendor import materialize, zip_layout
from bundler.venvs import chalice_for
from tests.bundle_support import build_once, find_python, json_body, proxy_event, run_probe

TARGET = target_for("3.12")
pytestmark = [
    pytest.mark.skipif(
        not (TARGET.packages_dir / "onnxruntime").is_dir(),
        reason="no .runtimes/py312: run scripts/setup (it fetches the 3.12 runtime packages)",
    ),
    pytest.mark.skipif(
        chalice_for(TARGET.python) is not None,
        reason="a venv here runs 3.12: tests/test_bundle.py checks its chalice-built zip",
    ),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, exported_model: Path) -> Bundle:
    return build_once(tmp_path_factory, TARGET, exported_model, name="bundle312")


def test_py312_bundle_is_within_limits_and_glibc_2_34(bundle: Bundle) -> None:
    print(f"\n{format_table(bundle.rows, bundle.zip_size)}")
    assert bundle.deployment_zip is None  # no chalice here runs on 3.12
    assert bundle.problems == []
    assert bundle.elf_summary["GLIBC"][0] > (
        2,
        26,
    )  # current wheels: Amazon Linux 2 could not run them
    vendor = bundle.app_dir / "vendor"
    for name, info in elf_files_in_tree(vendor):
        assert (info.highest("GLIBC") or ()) <= TARGET.glibc, name


def test_py312_handler_runs_in_an_isolated_python312(
    bundle: Bundle, tmp_path: Path, jpeg_bytes: bytes
) -> None:
    python = find_python("3.12")
    if python is None:
        pytest.skip("no python3.12 interpreter on this machine")
    task = materialize(zip_layout(bundle.app_dir), tmp_path / "task")
    events = [
        proxy_event("POST", "/classify", jpeg_bytes, {"Content-Type": "image/jpeg"}),
        proxy_event("POST", "/classify", b"GIF89a-truncated", {"Content-Type": "image/gif"}),
        proxy_event("GET", "/health"),
    ]
    result = run_probe(python, [task], {"events": events})
    ok, bad, health = result["responses"]
    assert ok["statusCode"] == 200, ok
    assert json_body(ok)["label"]
    assert bad["statusCode"] == 400
    assert json_body(bad)["error"] == "invalid_image"
    runtime = json_body(health)["runtime"]
    assert runtime["python"].startswith("3.12")
    assert runtime["onnxruntime"] == "1.32.0"
