"""The torch pipeline the service is compared with, run as a child of ``scripts/bench.py``
(``bundler.isolated.run_json(sys.executable, this file, request, site=True, folders=[REPO])``).

What a PyTorch deployment of the same model does: import torch + torchvision, build the MobileNetV2
with its head, ``load_state_dict``, torchvision's eval transform on a PIL image, eager forward, on
one thread as the service runs and a 1769 MB Lambda (one vCPU) allows. Standard library only at
the top: the cold start times the imports. One job per request: ``cold``, ``warm``, ``model_only``.

The work is the served model's: the bench reads its labels and preprocessing (resize, crop, mean,
std) from the ONNX file's own contract (``skyclass.*`` metadata) and passes them in each job, so a
larger input or another recipe in the served graph is the torch side's recipe too (read in the
parent: parsing the ONNX file here would be timed as the torch side's cold start).
"""

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch starts its thread pool


def load(job: dict) -> tuple[Any, Any]:
    """The model with the job's weights, and torchvision's eval transform for the served spec."""
    import torch

    from shared.spec import PreprocessSpec
    from trainer.data.images import torchvision_eval
    from trainer.model.classifier import build_model

    torch.set_num_threads(1)
    model = build_model("mobilenet_v2", len(job["labels"]), weights="none", mirror=job["mirror"])
    model.load_trained(torch.load(job["state"], map_location="cpu", weights_only=True))
    return model.eval(), torchvision_eval(PreprocessSpec.from_dict(job["spec"]))


def predict(model: Any, transform: Any, data: bytes) -> tuple[dict[str, float], int]:
    """Milliseconds per phase and the top class index for one encoded image."""
    import torch
    from PIL import Image

    t0 = time.perf_counter()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    t1 = time.perf_counter()
    batch = transform(image).unsqueeze(0)
    t2 = time.perf_counter()
    with torch.no_grad():  # the served graph's work: image and mirror, the classes, the rule
        features = model.served_features(batch)
        top = int(torch.softmax(model.head(features), dim=1)[0].argmax())
        if model.known_score is not None:
            model.known_score(features, torch.tensor([top]))
    t3 = time.perf_counter()
    phases = {"decode": t1 - t0, "preprocess": t2 - t1, "inference": t3 - t2}
    return {k: v * 1000 for k, v in phases.items()}, top


def warm(job: dict) -> dict:
    (model, transform), out = load(job), {}
    for name, path in job["images"].items():
        data = Path(path).read_bytes()
        runs = [predict(model, transform, data) for _ in range(job["warmup"] + job["requests"])]
        runs = runs[job["warmup"] :]
        out[name] = {
            "times_ms": [sum(phases.values()) for phases, _ in runs],
            "phases_ms": {k: statistics.median(p[k] for p, _ in runs) for k in runs[0][0]},
            "label": job["labels"][runs[-1][1]],
        }
    return out


def model_only(job: dict) -> list[dict]:
    import torch

    (model, _), cells = load(job), []
    crop = job["spec"]["crop"]
    for threads in job["threads"]:
        torch.set_num_threads(threads)
        for batch in job["batches"]:
            x, times = torch.randn(batch, 3, crop, crop), []
            with torch.no_grad():
                for _ in range(job["warmup"] + job["repeats"]):
                    start = time.perf_counter()
                    model(x)  # eval mode: image and mirror when the served model averages them
                    times.append((time.perf_counter() - start) * 1000)
            cell = {"batch": batch, "threads": threads, "times_ms": times[job["warmup"] :]}
            cells.append({"engine": "torch eager fp32", **cell})
    return cells


def main() -> None:
    started, request = time.perf_counter(), json.load(sys.stdin)
    if "cold" in request:
        job = request["cold"]
        _, top = predict(*load(job), Path(job["image"]).read_bytes())
        answer: Any = {"started": started, "ready": time.perf_counter(), "class": top}
    else:
        answer = warm(request["warm"]) if "warm" in request else model_only(request["model_only"])
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
