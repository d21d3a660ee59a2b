"""GET / in a real headless Chromium: pick an image, drop an image, see the label and the bars;
the accepted formats and the size limit are listed, the picker offers only those formats, and a
file the server would refuse is stopped before upload, and the previous photo's preview goes with
it; an image the model finds none of its classes reads "None of the four classes (closest: ...)"
with its bars.

Needs Debian's `chromium` (scripts/setup installs it when run as root) and the `playwright`
Python package from requirements-dev.txt; the test skips, saying which is missing, without them.
"""

import contextlib
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
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -r requirements-dev.txt)",
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def _page_served_by(browser: Any, model: Path) -> Iterator[Any]:
    """The upload page of a `chalice local` serving ``model``, in a new tab."""
    with chalice_local(model) as base:
        tab = browser.new_page()
        try:
            tab.goto(base + "/")
            yield tab
        finally:
            tab.close()


@pytest.fixture(scope="module")
def page(browser: Any, exported_model: Path) -> Iterator[Any]:
    with _page_served_by(browser, exported_model) as tab:
        yield tab


@pytest.fixture(scope="module")
def open_set_page(browser: Any, known_score_model: Path) -> Iterator[Any]:
    """Served by a model with a rejection rule: white images known, black ones unknown."""
    with _page_served_by(browser, known_score_model) as tab:
        yield tab


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


def _preview_shown(page: Any) -> bool:
    return page.eval_on_selector(
        "#preview", "img => img.style.display !== 'none' && img.hasAttribute('src')"
    )


@pytest.mark.parametrize(
    ("name", "mime", "data"),
    [("notes.txt", "text/plain", b"hello"), ("broken.jpg", "image/jpeg", b"hello")],
    ids=["refused-by-the-page", "refused-by-the-server"],
)
def test_a_refused_file_clears_the_previous_preview(
    page: Any, png_bytes: bytes, name: str, mime: str, data: bytes
):
    page.set_input_files(
        "#file", files=[{"name": "drone.png", "mimeType": "image/png", "buffer": png_bytes}]
    )
    _assert_shows_result(page, "drone.png")
    assert _preview_shown(page)
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert name in page.inner_text("#error")
    assert not _preview_shown(page)
    assert page.is_hidden("#result")


# --- open set -----------------------------------------------------------------------------------


def _pick(page: Any, name: str, data: bytes) -> None:
    page.evaluate("document.getElementById('status').textContent = ''")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    page.wait_for_function(f"document.getElementById('status').textContent === {name!r}")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)


def _bars(page: Any) -> list[tuple[str, float]]:
    return [
        (
            bar.get_attribute("data-label"),
            bar.eval_on_selector(".fill", "el => el.getBoundingClientRect().width"),
        )
        for bar in page.query_selector_all("#bars .bar")
    ]


def test_an_unknown_image_reads_none_of_the_four_classes_with_its_bars(
    open_set_page: Any, known_score_model: Path, black_png: bytes, white_png: bytes
):
    from shared.predictor import Predictor

    predictor = Predictor.from_path(known_score_model)
    black, white = predictor.predict(black_png), predictor.predict(white_png)
    assert (black["known"], white["known"]) == (False, True)
    page = open_set_page
    _pick(page, "sky.png", black_png)
    assert page.inner_text("#label") == f"None of the four classes (closest: {black['closest']})"
    assert page.get_attribute("#result", "data-known") == "false"
    note = page.inner_text("#note")
    assert page.is_visible("#note") and "unlike every class" in note
    # The score that decided, against the threshold /health gives, and the bars as a guess.
    threshold = predictor.contract.rejection.threshold
    assert (
        f"known_score {black['known_score']:.3f} is below the model's threshold {threshold:.3f}"
        in note
    )
    assert page.is_visible("#guess") and "not a verdict" in page.inner_text("#guess")
    bars = _bars(page)  # the probabilities are still shown, best first
    assert sorted(label for label, _ in bars) == sorted(DEFAULT_LABELS)
    assert bars[0][0] == black["closest"] and all(width > 0 for _, width in bars)
    assert [w for _, w in bars] == sorted((w for _, w in bars), reverse=True)
    assert page.inner_text("#bars .bar.best .name") == black["closest"]
    assert page.inner_text("#error") == ""
    # The next image that is one of the classes reads as such again.
    _pick(page, "bird.png", white_png)
    assert page.inner_text("#label") == white["label"]
    assert page.get_attribute("#result", "data-known") == "true"
    assert page.is_hidden("#note") and page.inner_text("#confidence").endswith("%")
    assert page.is_hidden("#guess")


def test_the_unknown_text_counts_the_models_own_labels(
    browser: Any, three_label_model: Path, png_bytes: bytes
):
    from shared.predictor import Predictor

    closest = Predictor.from_path(three_label_model).predict(png_bytes)["closest"]
    with _page_served_by(browser, three_label_model) as page:
        _pick(page, "photo.png", png_bytes)
        assert page.inner_text("#label") == f"None of the three classes (closest: {closest})"
        assert len(page.query_selector_all("#bars .bar")) == 3
