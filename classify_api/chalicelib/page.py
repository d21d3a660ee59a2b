"""The self-contained upload page served at GET / (HTML, CSS and JS in one file, no CDN).

The accepted formats and the size limit are filled in from ``media_types`` and ``limits`` when
the page is first served, so the page checks a file against the very limits the server applies.
"""

import json
from functools import cache
from pathlib import Path

from chalicelib import limits, media_types

_PAGE = Path(__file__).resolve().parent / "page.html"


@cache
def page_html() -> str:
    names = [name for name, _, _ in media_types.FORMATS]
    accept = [media_type for _, media_type, _ in media_types.FORMATS]
    accept += [ext for _, _, extensions in media_types.FORMATS for ext in extensions]
    checks = {
        "maxBytes": limits.MAX_BODY_BYTES,
        "types": list(media_types.IMAGE_TYPES + media_types.IMAGE_ALIASES),
        "extensions": [ext for _, _, extensions in media_types.FORMATS for ext in extensions],
        "convert": sorted(media_types.CONVERT_TYPES),
        "convertExtensions": [".heic", ".heif", ".avif"],
        "formats": ", ".join(names[:-1]) + " or " + names[-1],
    }
    replacements = {
        "__FORMATS__": ", ".join(names),
        "__MAX_BYTES__": f"{limits.MAX_BODY_BYTES:,}",
        "__MAX_MB__": f"{limits.MAX_BODY_BYTES / 1e6:.1f}",
        "__ACCEPT__": ",".join(accept),
        # Inside a <script>: "</" is escaped so no value could ever close the element.
        "__LIMITS_JSON__": json.dumps(checks).replace("</", "<\\/"),
    }
    html = _PAGE.read_text(encoding="utf-8")
    for marker, value in replacements.items():
        html = html.replace(marker, value)
    return html
