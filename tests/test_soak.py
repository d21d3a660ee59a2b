"""Soak: thousands of mixed valid and invalid requests through the handler in one process.

Zero 5xx, every valid image gets the very same result every time, every request writes its one
JSON log line, and after a warm-up the process's resident memory grows by at most 5% (a leak of
even a few kB per request would show).
``SKYCLASS_SOAK_REQUESTS`` sets the number of requests (2000 by default).
"""

import gc
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.api_client import multipart_body
from tests.imagegen import encode, synthetic_rgb
from tests.robust_support import (
    ROOT,
    check_reply,
    classify,
    env_count,
    pack,
    png_bomb,
    report,
    rss_kib,
    stable,
)
from tests.robust_support import pixel_model as pixel_model

pytestmark = pytest.mark.slow

REQUESTS = env_count("SKYCLASS_SOAK_REQUESTS", 2000)
MAX_RSS_GROWTH = 0.05

Request = tuple[bytes | str, str]
# tests.imagegen's kinds of content (tests.runfactory's class styles, not imported: it needs torch).
STYLES = ("noise", "flat", "gradient", "mixed")


def mixed_requests() -> dict[str, Request]:
    """Every form of valid upload and the common ways a request goes wrong, about half each."""
    photo = encode(synthetic_rgb(1024, 768, seed=31, content="mixed"), "JPEG", quality=90)
    images = {
        f"{fmt}-{style}": encode(synthetic_rgb(160 + 40 * i, 120 + 30 * i, 40 + i, style), fmt)
        for i, (fmt, style) in enumerate(zip(("JPEG", "PNG", "WEBP", "GIF"), STYLES, strict=True))
    }
    valid: dict[str, Request] = {
        name: (data, "application/octet-stream") for name, data in images.items()
    }
    valid["photo"] = (photo, "image/jpeg")
    valid["batch"] = multipart_body([("file", f"{n}.img", None, d) for n, d in images.items()])
    valid["json"] = pack("json", images["PNG-flat"], "image/png")
    invalid: dict[str, Request] = {
        "garbage": (bytes(range(256)) * 4, "image/jpeg"),
        "truncated": (photo[: len(photo) // 3], "image/jpeg"),
        "bomb": (png_bomb(), "image/png"),
        "415": (photo, "text/plain"),
        "no-boundary": (valid["batch"][0], "multipart/form-data"),
        "bad-json": ('{"image": "%%%"}', "application/json"),
    }
    return {**valid, **invalid}


def soak(count: int) -> dict[str, Any]:
    """Send ``count`` requests in a fixed shuffled order; every reply passes :func:`check_reply`
    (which also rules out 5xx). Returns the statuses, any changed results and the RSS figures."""
    named = mixed_requests()
    order = [name for _ in range(count // len(named) + 1) for name in named][:count]
    random.Random(8).shuffle(order)
    warm_up = max(len(named) * 3, count // 10)
    first: dict[str, tuple[int, object]] = {}
    statuses: Counter[int] = Counter()
    changed: list[tuple[int, str]] = []
    slowest = 0.0
    samples: list[int] = []
    for index, name in enumerate(order):
        if index >= warm_up and (index - warm_up) % max(1, (count - warm_up) // 10) == 0:
            gc.collect()
            samples.append(rss_kib())
        body, content_type = named[name]
        reply = classify(body, content_type)
        check_reply(reply, body)
        statuses[reply.status] += 1
        slowest = max(slowest, reply.seconds)
        payload = reply.payload
        if "results" in payload:
            payload = {k: stable(v) for k, v in payload["results"].items()}
        elif reply.status == 200:
            payload = stable(payload)
        if first.setdefault(name, (reply.status, payload)) != (reply.status, payload):
            changed.append((index, name))
    gc.collect()
    samples.append(rss_kib())
    return {"statuses": statuses, "changed": changed, "slowest": slowest, "rss_kib": samples}


def test_soak_mixed_requests(pixel_model: Path, request: pytest.FixtureRequest):
    # Its own process, holding only what Lambda holds (no torch, no pytest plugins' memory), so
    # 5% of its RSS is a tight bound rather than 5% of a test runner's gigabyte.
    completed = subprocess.run(
        [sys.executable, "-m", "tests.test_soak", str(REQUESTS)],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "classify_api")]),
            "SKYCLASS_MODEL_PATH": str(pixel_model),
        },
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    # stdout: the handler's request log, one JSON line per request, then the soak's figures.
    *log_lines, last = [line for line in completed.stdout.splitlines() if line.strip()]
    result = json.loads(last)
    logged = [json.loads(line) for line in log_lines]
    assert len(logged) == REQUESTS and all("_aws" in line for line in logged)
    assert Counter(line["status"] for line in logged) == Counter(
        {int(status): n for status, n in result["statuses"].items()}
    )
    statuses = {int(status): n for status, n in result["statuses"].items()}
    rss = result["rss_kib"]
    growth = (rss[-1] - rss[0]) / rss[0]
    report(
        request,
        f"soak: {sum(statuses.values())} requests "
        f"({', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))}), "
        f"slowest {result['slowest'] * 1000:.0f} ms; RSS after warm-up "
        f"{' -> '.join(f'{kib / 1024:.1f}' for kib in rss)} MiB ({growth:+.2%})",
    )
    assert sum(statuses.values()) == REQUESTS
    assert not result["changed"], f"results changed: {result['changed'][:5]}"
    assert {200, 400, 413, 415} <= set(statuses) and max(statuses) < 500
    assert growth <= MAX_RSS_GROWTH


if __name__ == "__main__":
    figures = soak(int(sys.argv[1]))
    sys.stdout.write("\n" + json.dumps(figures) + "\n")
