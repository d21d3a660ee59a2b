"""One JSON line per request on stdout (CloudWatch Logs on Lambda): what was asked, how it ended,
where the time went, and the request's EMF metrics (:mod:`chalicelib.emf`) in the same line."""

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chalice.app import Request

from chalicelib.emf import metrics
from shared.labels import UNKNOWN


class RequestLog:
    """What one request did, written as one JSON line when it ends (by ``guard.guarded``).

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
        return {**record, **metrics(self.route, latency, self.labels, errors)}

    def write(self, status: int, error_code: str | None) -> dict[str, Any]:
        record = self.line(status, error_code)
        # One write of one line: Lambda turns each stdout line into one CloudWatch Logs event,
        # and EMF needs the event to be nothing but the JSON object.
        sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return record


def _request_id(request: Request | None) -> str:
    """API Gateway's request id (what its own access logs and x-amzn-RequestId show), else
    Lambda's, else a new one (chalice's test client)."""
    context = getattr(request, "context", None) or {}
    lambda_context = getattr(request, "lambda_context", None)
    return str(
        context.get("requestId") or getattr(lambda_context, "aws_request_id", None) or uuid.uuid4()
    )
