"""GET / in a real headless Chromium: pick an image, drop an image, see the label and the bars.

Needs Debian's `chromium` (scripts/setup installs it when run as root) and the `playwright`
Python package from requirements-dev.txt; the test skips, saying which is missing, without them.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import DEFAULT_LABELS
from tests.api_client import chalice_local

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (as root: apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def page(exported_model: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -r requirements-dev.txt)",
    )
    executable = _chromium()
    with chalice_local(exported_model) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(base + "/")
            yield tab
        finally:
            browser.close()


def _assert_shows_result(page: Any, filename: str) -> None:
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.inner_text("#error") == ""
    assert page.inner_text("#label") in DEFAULT_LABELS
    bars = page.query_selector_all("#bars .bar")
    assert sorted(bar.get_attribute("data-label") for bar in bars) == sorted(DEFAULT_LABELS)
    widths = [
        bar.eval_on_selector(".fill", "el => el.getBoundingClientRect().width") for bar in bars
    ]
    assert all(w > 0 for w in widths) and widths == sorted(widths, reverse=True)
    assert page.inner_text("#status") == filename
    assert "inference" in page.inner_text("#timing")


def test_pick_an_image_and_see_the_label_and_bars(page: Any, jpeg_bytes: bytes):
    page.set_input_files(
        "#file", files=[{"name": "bird.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes}]
    )
    _assert_shows_result(page, "bird.jpg")


def test_drop_an_image(page: Any, png_bytes: bytes):
    page.evaluate(
        """async (bytes) => {
            const file = new File([new Uint8Array(bytes)], "drone.png", {type: "image/png"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.getElementById("drop");
            const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent("dragover", init));
            zone.dispatchEvent(new DragEvent("drop", init));
        }""",
        list(png_bytes),
    )
    page.wait_for_function("document.getElementById('status').textContent === 'drone.png'")
    _assert_shows_result(page, "drone.png")


def test_a_file_that_is_not_an_image_shows_the_error(page: Any):
    page.set_input_files(
        "#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    error = page.inner_text("#error")
    assert "notes.txt" in error and "not a supported image" in error and "HTTP 400" in error
    assert page.is_hidden("#result")
