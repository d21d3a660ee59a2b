"""The python3.12+ bundle (Amazon Linux 2023, glibc 2.34), as far as this 3.11 machine can test it.

chalice packages only for the Python running it, so here the 3.12 app is prepared and laid out as
chalice would zip it (bundler.vendor.zip_layout), measured, scanned, and run by a real python3.12
in isolation. The 3.12 runtime packages come from scripts/setup (.runtimes/py312), never from
the network during the tests.
"""

from pathlib import Path

import pytest

from bundler.build import Bundle
from bundler.elf import elf_files_in_tree
from bundler.runtime import target_for
from bundler.sizes import format_table
from bundler.vendor import materialize, zip_layout
from tests.bundle_support import build_once, find_python, json_body, proxy_event, run_probe

TARGET = target_for("3.12")
pytestmark = pytest.mark.skipif(
    not (TARGET.packages_dir / "onnxruntime").is_dir(),
    reason="no .runtimes/py312: run scripts/setup (it fetches the 3.12 runtime packages)",
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, exported_model: Path) -> Bundle:
    return build_once(tmp_path_factory, TARGET, exported_model, name="bundle312")


def test_py312_bundle_is_within_limits_and_glibc_2_34(bundle: Bundle) -> None:
    print(f"\n{format_table(bundle.rows, bundle.zip_size)}")
    assert bundle.deployment_zip is None  # chalice cannot package for 3.12 from 3.11
    assert bundle.problems == []
    assert bundle.elf_summary["GLIBC"][0] > (
        2,
        26,
    )  # current wheels: Amazon Linux 2 could not run them
    vendor = bundle.app_dir / "vendor"
    for name, info in elf_files_in_tree(vendor):
        assert (info.highest("GLIBC") or ()) <= TARGET.glibc, name


def test_duplicate_onnxruntime_library_is_not_shipped(bundle: Bundle) -> None:
    capi = bundle.app_dir / "vendor" / "onnxruntime" / "capi"
    assert list(capi.glob("onnxruntime_pybind11_state*.so"))
    assert not list(capi.glob("libonnxruntime.so*"))


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
