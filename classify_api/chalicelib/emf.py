"""CloudWatch Embedded Metric Format: the metrics one request log line carries.

CloudWatch extracts them from the log line itself, so alarms and dashboards need no agent and no
metrics API call on the request path.
"""

import time
from collections import Counter
from typing import Any

from shared.labels import UNKNOWN

NAMESPACE = "skyclass"
# Dimension values for a batch whose files did not all end the same way (EMF allows one value per
# dimension in a line): its per-file counts are still in the line's "labels"/"errors" fields.
MIXED = "(mixed)"


def metrics(
    route: str, latency_ms: float, labels: Counter[str], errors: Counter[str]
) -> dict[str, Any]:
    """``Latency`` and ``Requests`` by route, ``Classifications`` by label (``unknown`` for
    images that are none of the classes), ``Unknown`` (those images, a batch's counted exactly)
    by route, ``Errors`` by error code (a refused request or a refused file in a batch counts
    one)."""
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
