"""A URL where image bytes belong: recognised, and answered with "URLs are not fetched".

The service never downloads anything a client names; saying so beats "not an image".
"""

import re

NOT_FETCHED = (
    "URLs are not fetched: download the image and send its bytes "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg', or base64 in JSON)"
)
_URL = re.compile(r"(?i)^\s*(?:(?:https?|ftp|s3|gs|file)://|file:|www\.)")


def looks_like_url(data: bytes | str) -> bool:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return bool(_URL.match(text))


def url_message(where: str) -> str:
    return f"the {where} is a URL, not an image: {NOT_FETCHED}"
