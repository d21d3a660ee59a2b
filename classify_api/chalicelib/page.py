"""The self-contained upload page served at GET / (HTML, CSS and JS in one file, no CDN)."""

from functools import cache
from pathlib import Path

_PAGE = Path(__file__).resolve().parent / "page.html"


@cache
def page_html() -> str:
    return _PAGE.read_text(encoding="utf-8")
