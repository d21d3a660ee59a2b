"""Child jobs of section 3, model only: onnxruntime fp32 / int8 vs torch eager on one input tensor.

Each engine runs in its own child (:mod:`scripts.benchlib.worker`) and loops over batch sizes and
thread counts itself; a fresh onnxruntime session per thread count, ``torch.set_num_threads`` for
torch. The onnxruntime session is configured as the API configures it (``chalicelib.inference``)
except for the thread count, which is the variable here.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from scripts.benchlib.timing import summary, time_ms
from shared.model_contract import INPUT_NAME
from shared.spec import DEFAULT_SPEC

# MobileNetV2 at 224x224: ~0.30 G multiply-accumulates per image (torchvision's figure; the
# project's head adds 0.3 M). One MAC is two floating-point operations.
GFLOP_PER_IMAGE = 2 * 0.300


def _input(batch: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    return rng.standard_normal((batch, *DEFAULT_SPEC.input_shape), dtype=np.float32)


def _cell(engine: str, batch: int, threads: int, times: list[float]) -> dict[str, Any]:
    stats = summary(times)
    return {
        "engine": engine,
        "batch": batch,
        "threads": threads,
        **stats,
        "ms_per_image": stats["p50"] / batch,
        "gflops": GFLOP_PER_IMAGE * batch / (stats["p50"] / 1000),
    }


def _cells(
    engine: str,
    threads: int,
    run: Callable[[np.ndarray], object],
    batches: list[int],
    repeats: int,
    warmup: int,
) -> list[dict[str, Any]]:
    cells = []
    for batch in batches:
        x = _input(batch)
        cells.append(_cell(engine, batch, threads, time_ms(partial(run, x), repeats, warmup)))
    return cells


def ort_model(
    models: dict[str, str], batches: list[int], threads: list[int], repeats: int, warmup: int
) -> list[dict[str, Any]]:
    import onnxruntime as ort

    cells = []
    for precision, path in models.items():
        for n in threads:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = n
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            run = partial(_ort_run, session)
            cells += _cells(f"onnxruntime {precision}", n, run, batches, repeats, warmup)
    return cells


def _ort_run(session: Any, x: np.ndarray) -> object:
    return session.run(None, {INPUT_NAME: x})


def torch_model(
    state: str, batches: list[int], threads: list[int], repeats: int, warmup: int
) -> list[dict[str, Any]]:
    import torch

    from scripts.benchlib.seedstyle import load_seed_model

    model = load_seed_model(state)

    @torch.no_grad()
    def run(x: np.ndarray) -> object:
        return model(torch.from_numpy(x))  # zero-copy: shares the array's memory

    cells = []
    for n in threads:
        torch.set_num_threads(n)
        cells += _cells("torch eager fp32", n, run, batches, repeats, warmup)
    return cells
