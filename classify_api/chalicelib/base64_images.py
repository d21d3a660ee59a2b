"""The bytes of a base64 image in a JSON body, in every spelling clients produce."""

import base64
import binascii
import re

from chalicelib.errors import bad_request, shown
from chalicelib.urls import looks_like_url, url_message

_URLSAFE = str.maketrans("-_", "+/")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_BASE64_BAD_CHAR = re.compile(r"[^A-Za-z0-9+/]")


def base64_image(value: object, where: str) -> bytes:
    """The bytes of a base64 image: standard or URL-safe alphabet, padded or not, with or without
    a ``data:`` URL prefix, whitespace (line wrapping) ignored. Raises a 400 ``ApiError`` saying
    what is wrong with it."""
    if not isinstance(value, str):
        raise bad_request("missing_image", f"the {where} must be a string holding the base64 image")
    text = value.strip()
    if looks_like_url(text):
        raise bad_request("invalid_base64", url_message(where))
    if text[:5].lower() == "data:":
        # A data URL, as FileReader.readAsDataURL produces: keep what follows ";base64,".
        head, _, text = text.partition(",")
        if not head.lower().endswith(";base64"):
            raise bad_request(
                "invalid_base64",
                f'the {where} is a data URL without ";base64,": '
                "put the base64-encoded image after data:image/...;base64,",
            )
        if looks_like_url(text):
            raise bad_request("invalid_base64", url_message(where))
    # base64 tools wrap lines (whitespace carries no data); URL-safe base64 uses - and _, and
    # many encoders (JavaScript, Go's RawStdEncoding) leave the = padding out.
    compact = "".join(text.split()).translate(_URLSAFE).rstrip("=")
    if not compact:
        raise bad_request("empty_body", f"the {where} is empty")
    if not _BASE64.fullmatch(compact):
        bad = _BASE64_BAD_CHAR.search(compact)
        char = bad.group() if bad else "?"
        raise bad_request(
            "invalid_base64",
            f"the {where} is not base64: it contains {shown(char)}, which base64 never does "
            "(encode the image file with base64, e.g. base64 -w0 photo.jpg)",
        )
    if len(compact) % 4 == 1:
        raise bad_request(
            "invalid_base64",
            f"the {where} is not complete base64 ({len(compact):,} characters, one too many or "
            "some missing): encode the whole image file again",
        )
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):  # unreachable after the checks above; kept as a guard
        raise bad_request("invalid_base64", f"the {where} is not valid base64") from None
