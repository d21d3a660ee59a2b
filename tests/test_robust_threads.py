"""Eight threads calling the Lambda handler at once get exactly the answers sequential calls get.

Each request carries a different image (or a different error), so a request answered with another
thread's body, a half-loaded model or a session shared unsafely shows up as a wrong answer.
``SKYCLASS_THREAD_ROUNDS`` sets how many times each thread sends the whole set.
"""

import random
import shutil
import sys
import threading
from pathlib import Path

import pytest

from tests.api_client import multipart_body
from tests.imagegen import encode, synthetic_rgb
from tests.robust_support import classify, env_count, report, stable
from tests.robust_support import pixel_model as pixel_model
from tests.robust_support import served_model as served_model

# tests.imagegen's kinds of content: distinct pictures, so distinct answers from pixel_model.
STYLES = ("noise", "flat", "gradient", "mixed")

THREADS = 8
ROUNDS = env_count("SKYCLASS_THREAD_ROUNDS", 2)

Request = tuple[bytes, str]


def requests() -> dict[str, Request]:
    """Distinct requests: images that give distinct probabilities, a batch, and client errors."""
    kinds = [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "")]
    named: dict[str, Request] = {}
    for seed, ((fmt, content_type), style) in enumerate(zip(kinds, STYLES, strict=True)):
        rgb = synthetic_rgb(96 + 16 * seed, 80 + 8 * seed, seed=100 + seed, content=style)
        named[f"{fmt}-{style}"] = (encode(rgb, fmt), content_type or "application/octet-stream")
    named["batch"] = multipart_body(
        [("file", f"{name}.img", "application/octet-stream", named[name][0]) for name in named]
    )
    named["not-an-image"] = (b"definitely not an image", "image/png")
    named["bad-type"] = (named["PNG-flat"][0], "text/plain")
    return named


def answer(request: Request) -> tuple[int, object]:
    data, content_type = request
    reply = classify(data, content_type)
    payload = reply.payload
    if "results" in payload:
        payload = {**payload, "results": {k: stable(v) for k, v in payload["results"].items()}}
    elif reply.status == 200:
        payload = stable(payload)
    return reply.status, payload


def test_eight_threads_get_the_sequential_answers(
    pixel_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
):
    # A model path no test has served yet: the threads also race to load the model.
    fresh = shutil.copy(pixel_model, tmp_path / "model.onnx")
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(fresh))
    named = requests()
    start = threading.Barrier(THREADS)
    seen: list[list[tuple[str, tuple[int, object]]]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        order = list(named) * ROUNDS
        random.Random(index).shuffle(order)  # threads interleave different requests
        try:
            start.wait()
            seen[index].extend((name, answer(named[name])) for name in order)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    sequential = {name: answer(req) for name, req in named.items()}
    # The images really differ, so a swapped answer cannot pass for the right one.
    singles = [str(sequential[name][1]) for name in named if sequential[name][0] == 200]
    assert len(set(singles)) == len(singles)
    assert {status for status, _ in sequential.values()} == {200, 400, 415}
    wrong = [
        (index, name)
        for index, answers in enumerate(seen)
        for name, got in answers
        if got != sequential[name]
    ]
    total = sum(map(len, seen))
    assert total == THREADS * ROUNDS * len(named)
    assert not wrong, f"{len(wrong)} of {total} concurrent answers differ: {wrong[:5]}"
    report(request, f"threads: {THREADS} threads x {ROUNDS * len(named)} requests, all identical")


def test_concurrent_requests_never_see_each_others_data(
    served_model: Path, request: pytest.FixtureRequest
):
    """Cheap requests whose error echoes their own ``top``: with GIL switches forced every 10 us,
    a handler sharing request state between threads answers some with another thread's value
    (chalice keeps the current request on the app object; app.py makes it per thread)."""
    per_thread = env_count("SKYCLASS_THREAD_ECHOES", 300)
    mixed_up: list[tuple[str, str]] = []
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        start.wait()
        for i in range(per_thread):
            mine = f"t{index}-{i}"
            message = classify(b"x", "image/png", query={"top": mine}).payload["message"]
            if f"got {mine!r}" not in message:
                mixed_up.append((mine, message))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not mixed_up, f"{len(mixed_up)} answers carried another request's data: {mixed_up[:3]}"
    report(request, f"threads: {THREADS} x {per_thread} echo requests, none crossed")
