"""Timing loops and summaries shared by the child measurements (standard library only)."""

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()  # caches, lazy initialisation, thread pools
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (numpy's default method), without numpy."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(times: list[float]) -> dict[str, Any]:
    """p50 / p99 / min / mean in ms, and the count (p99 of a few samples is close to the max)."""
    return {
        "n": len(times),
        "p50": statistics.median(times),
        "p99": percentile(times, 99),
        "min": min(times),
        "mean": statistics.fmean(times),
    }


def proc_status_mb(field: str) -> float:
    """A memory line of /proc/self/status (``VmRSS`` now, ``VmHWM`` peak) in MiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise KeyError(field)
