"""Child jobs of sections 2 (warm request) and 6 (memory), run by :mod:`scripts.benchlib.worker`.

Ours goes through the whole Lambda handler, ``app.app(event, context)`` with the API Gateway proxy
event the gateway sends for a raw ``image/jpeg`` POST (base64 body): chalice routing, body checks,
decode, preprocessing, onnxruntime and the JSON response. The baseline is the seed's pipeline
(:mod:`scripts.benchlib.seedstyle`) on the same JPEG bytes, without any HTTP layer.
"""

import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.benchlib.timing import proc_status_mb, time_ms

ROOT = Path(__file__).resolve().parents[2]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _handler(model: str) -> Handler:
    os.environ["SKYCLASS_MODEL_PATH"] = model
    sys.path.insert(0, str(ROOT / "classify_api"))  # app.py + chalicelib/, as in /var/task
    import app

    return app.app


def _invoke(handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    from bundler.probe import LambdaContext

    response = handler(event, LambdaContext())
    if response["statusCode"] != 200:
        raise RuntimeError(f"the handler answered {response['statusCode']}: {response['body']}")
    return json.loads(response["body"])


def _events(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: json.loads(Path(p).read_text(encoding="utf-8")) for name, p in paths.items()}


def handler_warm(model: str, events: dict[str, str], requests: int, warmup: int) -> dict:
    """Per image: the wall time of each handler call, the label, and the median of each stage
    the API reports in ``timing_ms`` (decode / preprocess / inference)."""
    handler = _handler(model)
    out: dict[str, Any] = {}
    for name, event in _events(events).items():
        bodies: list[dict[str, Any]] = []
        times = time_ms(
            lambda event=event, bodies=bodies: bodies.append(_invoke(handler, event)),
            requests,
            warmup,
        )
        stages = {
            stage: statistics.median(b["timing_ms"][stage] for b in bodies[warmup:])
            for stage in bodies[-1]["timing_ms"]
        }
        out[name] = {"times_ms": times, "label": bodies[-1]["label"], "stages_ms": stages}
    out["peak_rss_mb"] = proc_status_mb("VmHWM")
    return out


def torch_warm(state: str, images: dict[str, str], requests: int, warmup: int) -> dict:
    """The seed's pipeline per image: PIL open + torchvision transform + eager forward."""
    from scripts.benchlib.seedstyle import load_seed_model, predict, seed_transform
    from shared.labels import DEFAULT_LABELS

    model, transform = load_seed_model(state), seed_transform()
    out: dict[str, Any] = {}
    for name, path in images.items():
        data, outputs = Path(path).read_bytes(), []
        times = time_ms(
            lambda data=data, outputs=outputs: outputs.append(predict(model, transform, data)),
            requests,
            warmup,
        )
        out[name] = {"times_ms": times, "label": DEFAULT_LABELS[int(outputs[-1].argmax())]}
    out["peak_rss_mb"] = proc_status_mb("VmHWM")
    return out


def handler_memory(model: str, events: dict[str, str], requests: int, warmup: int) -> dict:
    """RSS of one warm handler over ``requests`` calls cycling through the images.

    Growth is measured from the RSS right after ``warmup`` calls (onnxruntime's arena, Pillow's and
    numpy's buffers have reached their working size by then) to the RSS after the last call.
    """
    handler = _handler(model)
    cycle = list(_events(events).values())
    rss_start = proc_status_mb("VmRSS")
    for i in range(warmup):
        _invoke(handler, cycle[i % len(cycle)])
    rss_warm = proc_status_mb("VmRSS")
    every = max(1, requests // 20)
    samples = []
    for i in range(requests):
        _invoke(handler, cycle[i % len(cycle)])
        if (i + 1) % every == 0:
            samples.append(proc_status_mb("VmRSS"))
    rss_end = proc_status_mb("VmRSS")
    return {
        "requests": requests,
        "warmup": warmup,
        "rss_before_first_request_mb": rss_start,
        "rss_after_warmup_mb": rss_warm,
        "rss_end_mb": rss_end,
        "rss_samples_mb": samples,
        "peak_rss_mb": proc_status_mb("VmHWM"),
        "growth_pct": (rss_end - rss_warm) / rss_warm * 100,
    }
