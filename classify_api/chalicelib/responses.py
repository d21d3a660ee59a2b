"""The three kinds of answer the app gives: JSON results, JSON errors and the HTML page."""

import json
from collections.abc import Mapping
from typing import Any

from chalice import Response

from chalicelib.errors import ApiError

# Results depend on the uploaded body; caches along the way must not reuse them.
_NO_STORE = {"Cache-Control": "no-store"}


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    # allow_nan=False: NaN is not JSON; if it ever appeared, failing loudly beats a broken body.
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **_NO_STORE, **(headers or {})},
    )


def error_response(error: ApiError) -> Response:
    return json_response(error.to_body(), status=error.status, headers=error.headers)


def html_response(html: str) -> Response:
    return Response(
        body=html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=300"},
    )
