"""How a request's body was framed: one well-formed Content-Length, or chunks the server read.

A request with two Content-Length headers, or one that is not a number, is the shape of request
smuggling: front ends and the app may disagree on where the body ends. Proxies refuse it, and so
does the app wherever it can see it (API Gateway's ``multiValueHeaders``, a single malformed
value). `chalice local` keeps only the first of repeated headers and drops the connection on a
non-numeric one before the app runs (docs/api.md, "chalice local").
"""

import re
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import ApiError, bad_request, shown

_DIGITS = re.compile(r"[0-9]+")
_CONTENT_LENGTH = "content-length"


def check_framing(headers: Mapping[str, str], event: Mapping[str, Any], body: bytes) -> None:
    """Raise a 400 for a repeated or malformed Content-Length, a 411 for a chunked body that
    arrived unread; return quietly otherwise."""
    _refuse_bad_content_length(headers, event)
    _refuse_unread_chunked_body(headers, body)


def content_lengths(headers: Mapping[str, str], event: Mapping[str, Any]) -> list[str]:
    """Every Content-Length value the request carried: all of them from the event's
    ``multiValueHeaders`` (API Gateway's), else the single ``headers`` value."""
    values: list[str] = []
    for name, items in (event.get("multiValueHeaders") or {}).items():
        if name.lower() == _CONTENT_LENGTH and isinstance(items, list):
            values += [str(item) for item in items]
    if not values and headers.get(_CONTENT_LENGTH) is not None:
        values.append(str(headers[_CONTENT_LENGTH]))
    return values


def _refuse_bad_content_length(headers: Mapping[str, str], event: Mapping[str, Any]) -> None:
    values = content_lengths(headers, event)
    if len(values) > 1:
        raise bad_request(
            "invalid_content_length",
            f"the request has {len(values)} Content-Length headers; a request has one at most "
            "(repeated ones are how request smuggling starts): send it again with one",
        )
    if values and not _DIGITS.fullmatch(values[0].strip(" \t")):
        raise bad_request(
            "invalid_content_length",
            f"the Content-Length header must be the body's size in bytes, written with the "
            f"digits 0-9, got {shown(values[0])}: let the client set it (curl, requests and "
            "browsers do)",
        )


def _refuse_unread_chunked_body(headers: Mapping[str, str], body: bytes) -> None:
    """411 for a chunked upload that arrived empty: `chalice local` reads a body only by its
    Content-Length and leaves chunked ones unread (API Gateway de-chunks them itself)."""
    if body or "chunked" not in headers.get("transfer-encoding", "").lower():
        return
    raise ApiError(
        411,
        "length_required",
        "the body was sent in chunks (Transfer-Encoding: chunked) and this server read none of "
        "it: send it with a Content-Length header, e.g. curl --data-binary @photo.jpg or "
        "curl -F file=@photo.jpg (not curl -T - or a streamed body)",
        # The unread chunks are still on the connection: it must not carry another request.
        headers={"Connection": "close"},
    )
