"""HTTP plumbing every route shares: the error type, responses, the guard with its request log,
and the app class.

Every failure a request can trigger becomes an :class:`ApiError` before it leaves ``chalicelib``;
the JSON body is ``{"error": code, "message": sentence}``. Messages never carry file system paths
or exception dumps: they describe what the client sent and how to fix it, and quote the client's
own values only through :func:`shown` (cut short, so a long header cannot fill a message).

Each request writes one JSON line to stdout (CloudWatch Logs on Lambda) through
:class:`RequestLog`: what was asked, how it ended, where the time went, and CloudWatch Embedded
Metric Format metrics in the same line, so alarms and dashboards need no code of their own.
"""

import functools
import json
import logging
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from shared.labels import UNKNOWN

_log = logging.getLogger(__name__)
# Results depend on the uploaded body; caches along the way must not reuse them.
_NO_STORE = {"Cache-Control": "no-store"}
_SHOWN_CHARS = 40


class ApiError(Exception):
    """A request that cannot be served, with the status and body the client should see."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def too_large(code: str, message: str) -> ApiError:
    return ApiError(413, code, message)


def model_unavailable(reason: str) -> ApiError:
    """503: the service has no usable model (a deployment problem, not the client's)."""
    return ApiError(503, "model_unavailable", reason)


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """A client's value quoted for a message: ``'image/x-foo'``, cut to ``limit`` characters
    (marked with ``…``) so an 8 kB header cannot fill the answer."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)


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


# -- the request log ----------------------------------------------------------------------------
NAMESPACE = "skyclass"
# Dimension values for a batch whose files did not all end the same way (EMF allows one value per
# dimension in a line): its per-file counts are still in the line's "labels"/"errors" fields.
MIXED = "(mixed)"


class RequestLog:
    """What one request did, written as one JSON line when it ends (by :func:`guarded`).

    Views add to it (``set``, ``phase``, ``result``, ``file_error``); never image bytes nor the
    client's file or part names: those are the client's data, the line is the operator's.
    """

    def __init__(self, route: str, request: Request | None) -> None:
        self.route = route
        self.started = time.perf_counter()
        self.fields: dict[str, Any] = {}
        self.phases_ms: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.confidence: float | None = None
        self.known: bool | None = None
        self.method = getattr(request, "method", None)
        self.request_id = _request_id(request)

    def set(self, **fields: Any) -> None:
        self.fields.update(fields)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases_ms[name] += (time.perf_counter() - started) * 1000

    def result(self, result: Mapping[str, Any]) -> None:
        """A classification: its label, confidence and per-phase timings. An image the model's
        rule finds none of its classes counts as ``unknown``, even when the client asked for the
        closest class (``reject=false``): the line counts verdicts, ``reject`` says what was
        asked."""
        self.known = bool(result.get("known", True))
        self.labels[result["label"] if self.known else UNKNOWN] += 1
        self.confidence = result["confidence"]
        for name, ms in result.get("timing_ms", {}).items():
            self.phases_ms[name] += ms

    def file_error(self, code: str) -> None:
        self.errors[code] += 1

    def line(self, status: int, error_code: str | None) -> dict[str, Any]:
        """The JSON object written for this request, EMF metrics included."""
        latency = round((time.perf_counter() - self.started) * 1000, 2)
        errors = self.errors + Counter([error_code] if error_code else [])
        record: dict[str, Any] = {
            "request_id": self.request_id,
            "route": self.route,
            "method": self.method,
            "status": status,
            "error": error_code,
            **self.fields,
            "latency_ms": latency,
            "phases_ms": {name: round(ms, 2) for name, ms in self.phases_ms.items()},
        }
        if self.labels:
            record["labels"] = dict(self.labels)
        if sum(self.labels.values()) == 1 and not errors:
            record["label"], record["confidence"] = next(iter(self.labels)), self.confidence
            record["known"] = self.known
        if errors:
            record["errors"] = dict(errors)
        return {**record, **_metrics(self.route, latency, self.labels, errors)}

    def write(self, status: int, error_code: str | None) -> dict[str, Any]:
        record = self.line(status, error_code)
        # One write of one line: Lambda turns each stdout line into one CloudWatch Logs event,
        # and EMF needs the event to be nothing but the JSON object.
        sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return record


def _metrics(
    route: str, latency_ms: float, labels: Counter[str], errors: Counter[str]
) -> dict[str, Any]:
    """CloudWatch EMF: ``Latency`` and ``Requests`` by route, ``Classifications`` by label
    (``unknown`` for images that are none of the classes), ``Unknown`` (those images, a batch's
    counted exactly) by route, ``Errors`` by error code (a refused request or a refused file in a
    batch counts one)."""
    route_metrics = [("Latency", "Milliseconds"), ("Requests", "Count")]
    members: dict[str, Any] = {"Route": route, "Latency": latency_ms, "Requests": 1}
    if labels:
        route_metrics.append(("Unknown", "Count"))
        members["Unknown"] = labels[UNKNOWN]
    directives: list[dict[str, Any]] = [_directive(["Route"], route_metrics)]
    if labels:
        directives.append(_directive(["Label"], [("Classifications", "Count")]))
        members["Label"] = next(iter(labels)) if len(labels) == 1 else MIXED
        members["Classifications"] = sum(labels.values())
    if errors:
        directives.append(_directive(["ErrorCode"], [("Errors", "Count")]))
        members["ErrorCode"] = next(iter(errors)) if len(errors) == 1 else MIXED
        members["Errors"] = sum(errors.values())
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives},
        **members,
    }


def _directive(dimensions: list[str], metrics: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Namespace": NAMESPACE,
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics],
    }


def _request_id(request: Request | None) -> str:
    """API Gateway's request id (what its own access logs and x-amzn-RequestId show), else
    Lambda's, else a new one (chalice's test client)."""
    context = getattr(request, "context", None) or {}
    lambda_context = getattr(request, "lambda_context", None)
    return str(
        context.get("requestId") or getattr(lambda_context, "aws_request_id", None) or uuid.uuid4()
    )


def guarded(route: str) -> Callable[[Callable[..., Response]], Callable[[Request], Response]]:
    """Wrap a view ``view(log, request)`` into ``view(request)`` for app.py.

    :class:`ApiError` becomes its JSON body, anything else a bare 500 (the traceback goes to the
    log, the client only learns that the fault is ours); HEAD answers carry no body; every
    request ends with its :class:`RequestLog` line.
    """

    def decorate(view: Callable[..., Response]) -> Callable[[Request], Response]:
        @functools.wraps(view)
        def wrapper(request: Request) -> Response:
            log = RequestLog(route, request)
            error_code = None
            try:
                response = view(log, request)
            except ApiError as exc:
                error_code = exc.code
                response = error_response(exc)
            except Exception:  # noqa: BLE001 - last line of defence: never a stack trace to a client
                _log.exception("unhandled error in %s", view.__name__)
                error_code = "internal_error"
                response = error_response(
                    ApiError(500, error_code, "the server failed to handle this request")
                )
            if log.method == "HEAD":
                # A body after a HEAD answer's headers would be read as the next response on a
                # reused connection (chalice local writes whatever body it is given).
                response.body = ""
            response.headers["X-Request-Id"] = log.request_id
            log.write(response.status_code, error_code)
            return response

        return wrapper

    return decorate


class ThreadSafeChalice(Chalice):
    """Chalice keeps the request being handled in one attribute of the app, shared by all threads.

    Lambda sends one event at a time, but `chalice local` serves each connection on its own thread,
    and there two concurrent requests could each read the other's body: one client got another
    client's answer. Each thread keeps its own current request instead.
    """

    _requests = threading.local()

    @property
    def current_request(self) -> Request | None:
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request: Request | None) -> None:
        self._requests.request = request
