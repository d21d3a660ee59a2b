"""GET / in a real headless Chromium: pick an image, drop an image, see the label and the bars;
the accepted formats and the size limit are listed, the picker offers only those formats, and a
file the server would refuse is stopped before upload (issue 15, point 11).

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


def test_a_broken_image_gets_the_servers_message(page: Any):
    page.set_input_files(
        "#file", files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"hello"}]
    )
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    error = page.inner_text("#error")
    assert "broken.jpg" in error and "not a supported image" in error and "HTTP 400" in error
    assert page.is_hidden("#result")


def test_the_page_lists_the_formats_and_the_size_limit(page: Any):
    text = page.inner_text("#limits")
    assert "JPEG, PNG, WebP, GIF, BMP, TIFF" in text and "4,500,000 bytes" in text
    assert "HEIC" in text


def test_the_file_picker_offers_only_accepted_formats(page: Any):
    accept = page.get_attribute("#file", "accept").split(",")
    assert "image/*" not in accept
    assert {"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff"} <= set(
        accept
    )
    assert {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"} <= set(accept)
    assert not {"image/heic", "image/avif", ".heic", ".avif", ".svg"} & set(accept)


@pytest.mark.parametrize(
    ("name", "mime", "size", "words"),
    [
        ("huge.jpg", "image/jpeg", 4_500_001, "the limit is 4,500,000 bytes: resize or compress"),
        ("IMG_0001.HEIC", "image/heic", 2000, "convert it to JPEG"),
        ("photo.avif", "", 2000, "convert it to JPEG"),
        ("notes.txt", "text/plain", 5, "not an image this service reads"),
        ("empty.png", "image/png", 0, "the file is empty"),
    ],
)
def test_files_the_server_would_refuse_are_stopped_before_upload(
    page: Any, name: str, mime: str, size: int, words: str
):
    sent: list[str] = []

    def record(request: Any) -> None:
        if request.url.endswith("/classify"):
            sent.append(request.url)

    page.on("request", record)
    try:
        page.evaluate("document.getElementById('error').textContent = ''")
        page.set_input_files(
            "#file", files=[{"name": name, "mimeType": mime, "buffer": bytes(size)}]
        )
        page.wait_for_function("document.getElementById('error').textContent !== ''")
        error = page.inner_text("#error")
    finally:
        page.remove_listener("request", record)
    assert name in error and words in error, error
    assert sent == []  # refused in the page: nothing was uploaded
