"""Measure the service and the trainer against their baselines, in one run.

    .venv/bin/python -m scripts.bench                 # everything, full counts (about 10 minutes)
    .venv/bin/python -m scripts.bench --quick         # tiny counts: checks that it all runs
    .venv/bin/python -m scripts.bench --sections cold_start warm_request --json out.json

Ours is the real Lambda bundle: ``bundler`` builds it around the model, it is unzipped (the int8
copy differs only by its model file), and each measurement runs it in a fresh, isolated
``.venv-deploy`` interpreter that sees only that folder (``bundler/probe.py``), as Lambda does.
The baseline, the torch pipeline (``scripts/benchlib/torch_side.py``), runs in its own process.
Both run on one thread, as a 1769 MB Lambda (one vCPU) allows. The table goes to stdout, progress
to stderr, everything with raw timings to ``--json``. Exit 1 when a section failed, else 0.
"""

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import median as p50
from typing import TYPE_CHECKING, Any

from bundler.isolated import run_json
from bundler.probe import PROBE, proxy_event
from bundler.runtime import deploy_interpreter, deploy_target
from bundler.sizes import MAX_UNZIPPED, MAX_ZIPPED, TARGET_ZIPPED, model_zipped, with_trained_model
from shared.paths import APP_DIR, REPO

if TYPE_CHECKING:  # the trainer (torch) loads only when a section needs it
    from trainer.learning.config import TrainConfig

TORCH_SIDE = REPO / "scripts" / "benchlib" / "torch_side.py"
MIB = 1024**2
# 1-minute load averages above which the figures are flagged as noise: before the run, and after
# it, when the bench itself has kept about one of the cores busy for minutes.
BUSY_LOAD, BUSY_LOAD_AFTER = 1.0, 2.0
SMALL, LARGE = "300x300", "4032x3024"
OURS = ("ours fp32", "ours int8")
REFERENCES = 183  # the nearest-photo rule's training photos in the bench models (realdev's 60%)
# US East (N. Virginia) list prices, first tier (aws.amazon.com/lambda/pricing and
# aws.amazon.com/api-gateway/pricing, read 2026-12-01): Lambda per GB-second and per request,
# REST API per request. Lambda bills the handler's duration rounded up to the millisecond.
GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PER_REQUEST = 0.20e-6 + 3.50e-6
MEMORY_MB = json.loads((APP_DIR / ".chalice" / "config.json").read_text())["lambda_memory_size"]


@dataclass(frozen=True)
class Counts:
    repeats: int = 7  # cold starts per side
    requests: int = 100  # warm requests per image and side
    warmup: int = 10
    model_repeats: int = 30
    memory_requests: int = 1000
    memory_warmup: int = 100
    train_per_class: int = 32
    epochs: int = 3
    calibration: int = 16
    rounds: int = 5  # warm requests come in this many rounds, every side in turn
    # Beside the fp32 x86_64 bundle every section uses; --quick builds only that one.
    more_bundles: tuple[str, ...] = ("int8-x86_64", "fp32-arm64", "int8-arm64")
    # The model-only grid: batch sizes and thread counts, each side.
    batches: tuple[int, ...] = (1, 8)
    threads: tuple[int, ...] = (1, 2)
    # The served input (resize, crop); None: the trainer's default, what users serve.
    input_size: tuple[int, int] | None = None

    def config(self) -> "TrainConfig":
        """The trainer's default config at this bench's input size."""
        from trainer.learning.config import TrainConfig

        config = TrainConfig()
        if self.input_size is None:
            return config
        return replace(config, resize=self.input_size[0], crop=self.input_size[1])


# A smoke test's counts: every code path at sizes that take seconds.
QUICK = Counts(1, 3, 1, 2, 10, 2, 4, 1, 2, 1, more_bundles=(), batches=(1,), threads=(1,),
               input_size=(72, 64))  # fmt: skip


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str | None = None  # "ratio <= 0.1", "value <= 5", ...
    ratio: float | None = field(init=False)
    met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = self.value / self.baseline if self.baseline else None
        self.met = None
        if self.target:
            on, op, bound = self.target.split()[:3]
            subject = self.ratio if on == "ratio" else self.value
            self.met = subject <= float(bound) if op == "<=" else subject >= float(bound)


@dataclass
class Section:
    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, *baseline: Any, target: str = "") -> None:
        self.rows.append(Row(self.name, name, value, unit, *baseline, target=target or None))


@dataclass
class Inputs:
    work: Path
    counts: Counts
    models: dict[str, Path]  # fp32, int8 (ONNX) and state (the same weights for torch)
    images: dict[str, Path]
    events: dict[str, dict]
    tasks: dict[str, Path] = field(default_factory=dict)  # unzipped bundles: fp32, int8
    bundles: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def p99(times: list[float]) -> float:
    return sorted(times)[round(0.99 * (len(times) - 1))]


def photo_jpeg(width: int, height: int) -> bytes:
    """Gradients, texture and sensor-like noise: the noise sets the size and so the decode time
    (draft mode does not scale entropy decoding); the 12 MP one is ~3 MB, like a phone photo."""
    import io

    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wave = np.sin(xx * 6 / min(width, height)) * np.cos(yy * 6 / min(width, height))
    base = np.stack([80 + 120 * xx / width, 100 + 100 * yy / height, 128 + 60 * wave], axis=-1)
    noisy = base + np.random.default_rng(0).normal(0, 8, base.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_models(folder: Path, counts: Counts) -> dict[str, Path]:
    """Random-weight MobileNetV2s (seed 0; speed does not depend on the weights) exported by the
    project's own exporter as ``trainer.fit`` exports its default recipe (its input size, image and
    mirror averaged, the nearest-photo "unknown" rule inside): ``fp32``, ``int8`` (the project's
    quantizer), ``openset`` (``--negatives``: a background head beside the rule) and ``closed``
    (the same graph without any rule, the baseline of what answering "unknown" costs), with the
    torch weights of ``fp32`` (``state``)."""
    import numpy as np
    import onnx
    import torch

    from shared import DEFAULT_LABELS, ModelContract
    from shared.model_contract import KNOWN_SCORE_OUTPUT, Rejection
    from trainer.exporting.graph import save_onnx, to_onnx_model
    from trainer.exporting.parity import PreparedImages
    from trainer.exporting.quantize import quantize_int8
    from trainer.model.classifier import build_model

    folder.mkdir(parents=True)
    config, k, calibration = counts.config(), len(DEFAULT_LABELS), counts.calibration
    contract = ModelContract(DEFAULT_LABELS, config.spec, {"model_version": "bench-random"})

    def model(rule: bool, background: bool) -> Any:
        torch.manual_seed(0)
        m = build_model("mobilenet_v2", k, weights="none", mirror=config.mirror).eval()
        if rule:  # as many reference photos as realdev's 60% has
            known = m.add_known_score(REFERENCES, k, background)
            refs = torch.randn(REFERENCES, m.pool_features)
            known.references.copy_(refs / refs.norm(dim=1, keepdim=True))
            known.class_mask.copy_(
                torch.where(torch.arange(REFERENCES) % k == torch.arange(k)[:, None], 0.0, -10.0)
            )
        return m

    def export(m: Any, method: str | None) -> onnx.ModelProto:
        rule = Rejection(method, KNOWN_SCORE_OUTPUT, 0.0, 0.95) if method else None
        return to_onnx_model(m, replace(contract, rejection=rule))

    served = model(rule=True, background=False)
    torch.save(served.state_dict(), folder / "state.pt")
    fp32 = export(served, "nearest_photo")
    shape = (calibration, *config.spec.input_shape)
    planes = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    names = tuple(Path(f"random-{i}") for i in range(calibration))
    int8 = quantize_int8(fp32, PreparedImages(names, np.zeros(calibration), planes, config.spec))
    onnx.helper.set_model_props(int8, {p.key: p.value for p in fp32.metadata_props})
    openset = export(model(rule=True, background=True), "background_class+nearest_photo")
    closed = export(model(rule=False, background=False), None)
    return {"fp32": save_onnx(fp32, folder / "m.onnx"), "int8": save_onnx(int8, folder / "q.onnx"),
            "state": folder / "state.pt", "openset": save_onnx(openset, folder / "o.onnx"),
            "closed": save_onnx(closed, folder / "c.onnx")}  # fmt: skip


def build_bundle(inputs: Inputs, precision: str, architecture: str) -> dict[str, Any]:
    """``scripts/build_bundle --model M --out DIR [--architecture A]``: the zip and its sizes."""
    from bundler.build import build

    target, out = replace(deploy_target(), architecture=architecture), inputs.work / "bundle"
    b = build(target, model=inputs.models[precision], out=out / f"{precision}-{architecture}")
    unzipped = sum(r.unzipped for r in b.rows) / MIB
    return {"zip": str(b.deployment_zip), "zipped_mb": b.zip_size / MIB, "unzipped_mb": unzipped,
            "model_zipped_mb": model_zipped(b.rows) / MIB, "problems": b.problems,
            "with_trained_fp32_mb": with_trained_model(b.rows, b.zip_size) / MIB,
            "ran_under": b.ran_under, "bytecode": b.bytecode}  # fmt: skip


def prepare(work: Path, counts: Counts, names: list[str]) -> Inputs:
    log("preparing the models, the images and the fp32 bundle ...")
    images, events = {}, {}
    for name in (SMALL, LARGE):
        data = photo_jpeg(*map(int, name.split("x")))
        images[name] = work / f"{name}.jpg"
        images[name].write_bytes(data)
        events[name] = proxy_event("POST", "/classify", data, {"Content-Type": "image/jpeg"})
    inputs = Inputs(work, counts, make_models(work / "models", counts), images, events)
    if set(names) - {"training"}:
        inputs.bundles["fp32-x86_64"] = build_bundle(inputs, "fp32", "x86_64")
        for precision in ("fp32", "int8", "openset", "closed"):
            task = inputs.tasks[precision] = work / f"task-{precision}"
            with zipfile.ZipFile(inputs.bundles["fp32-x86_64"]["zip"]) as archive:
                archive.extractall(task)
            shutil.copyfile(inputs.models[precision], task / "chalicelib/model/model.onnx")
    return inputs


def ours(inputs: Inputs, precision: str, request: dict) -> Any:
    task, env = inputs.tasks[precision], {"AWS_DEFAULT_REGION": "us-east-1"}
    return run_json(deploy_interpreter(), PROBE, request, folders=[task], cwd=task, env=env)


def served_contract(model: Path) -> Any:
    """The labels and preprocessing the served model carries in its own metadata."""
    import onnx

    from shared.model_contract import ModelContract

    proto = onnx.load(str(model), load_external_data=False)
    return ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props})


def torch_side(inputs: Inputs, job: str, **request: Any) -> Any:
    """The torch pipeline on the same weights, with the served fp32 model's own contract (labels
    and preprocessing), so both sides do the served graph's work."""
    from trainer.learning.config import TrainConfig

    served = served_contract(inputs.models["fp32"])
    request.update(state=str(inputs.models["state"]), labels=list(served.labels),
                   spec=served.spec.to_dict(), mirror=TrainConfig().mirror)  # fmt: skip
    return run_json(sys.executable, TORCH_SIDE, {job: request}, site=True, folders=[REPO])


def cold_start(inputs: Inputs) -> Section:
    s, runs = Section("cold start"), {"ours fp32": [], "ours int8": [], "torch": []}
    for round_ in range(1 + inputs.counts.repeats):  # round 0 fills the page cache, untimed
        for name in runs:  # in turn, so a change in machine load hits every side
            spawned = time.perf_counter()
            if name == "torch":
                ready = torch_side(inputs, "cold", image=str(inputs.images[SMALL]))["ready"]
            else:
                answer = ours(inputs, name[5:], {"events": [inputs.events[SMALL]]})["invoke"]
                if answer["responses"][0]["statusCode"] != 200:
                    raise RuntimeError(f"cold start {name}: {answer['responses'][0]}")
                ready = answer["timing"]["first_response"]
            if round_:  # perf_counter is CLOCK_MONOTONIC: one clock for every process
                runs[name].append((ready - spawned) * 1000)
    for name in OURS:
        base = (p50(runs["torch"]), "torch, 1 thread")
        s.add(f"{name}: new process -> first response", p50(runs[name]), "ms", *base,
              target="ratio <= 0.1")  # fmt: skip
    s.details = {"runs_ms": runs}
    s.notes.append(
        f"median of {inputs.counts.repeats} new processes per side after one untimed; ours: the "
        f"unzipped bundle, isolated .venv-deploy Python, one proxy event ({SMALL} JPEG); torch: "
        "import torch + torchvision, MobileNetV2 + head, load_state_dict, transform, predict"
    )
    return s


def merge_rounds(rounds: list[dict], images: dict[str, str]) -> dict[str, Any]:
    """One side's warm rounds as one: every request's time, the median of each round's phase
    medians, every draft-decode time."""
    merged: dict[str, Any] = {}
    for img in images:
        parts = [r[img] for r in rounds]
        merged[img] = {**parts[-1], "times_ms": [t for p in parts for t in p["times_ms"]],
                       "phases_ms": {k: p50([p["phases_ms"][k] for p in parts])
                                     for k in parts[0]["phases_ms"]}}  # fmt: skip
        if "draft_ms" in parts[0]:
            merged[img]["draft_ms"] = [t for p in parts for t in p["draft_ms"]]
    return merged


def warm_request(inputs: Inputs) -> Section:
    c, s = inputs.counts, Section("warm request")
    counts = {"requests": max(1, c.requests // c.rounds), "warmup": c.warmup}
    images = {n: str(p) for n, p in inputs.images.items()}
    sides: dict[str, list[dict]] = {f"ours {p}": [] for p in ("fp32", "openset", "int8", "closed")}
    sides["torch"] = []
    # Rounds, every side in turn: a change in the machine's load hits every side alike, so the
    # ratios of one run stay comparable on a shared machine.
    for _ in range(c.rounds):
        for side, done in sides.items():
            if side == "torch":
                done.append(torch_side(inputs, "warm", images=images, **counts))
            else:
                job = {"warm": {"events": inputs.events, **counts}}
                done.append(ours(inputs, side.removeprefix("ours "), job)["warm"])
    runs = {side: merge_rounds(done, images) for side, done in sides.items()}
    for img in images:
        base = (p50(runs["torch"][img]["times_ms"]), "torch p50")
        for side in OURS:
            s.add(f"{side} {img} p50", p50(runs[side][img]["times_ms"]), "ms", *base,
                  target="ratio <= 0.25 (>= 4x faster)")  # fmt: skip
    for img in images:  # the same graph without any rule is the baseline of both rules
        closed = (p50(runs["ours closed"][img]["times_ms"]), "ours fp32 p50, no rule")
        for side, what in (("ours fp32", "nearest photo"), ("ours openset", "+ background head")):
            s.add(f"{side} \"unknown\" rule ({what}) {img} p50",
                  p50(runs[side][img]["times_ms"]), "ms", *closed, target="ratio <= 1.1")  # fmt: skip
    # Same decoded size on both sides only for the small image (ours decodes 12 MP in draft mode).
    transform = (runs["torch"][SMALL]["phases_ms"]["preprocess"], "torchvision transform")
    s.add(f"ours preprocess {SMALL} (numpy)", runs["ours fp32"][SMALL]["phases_ms"]["preprocess"],
          "ms", *transform, target="ratio <= 1.0")  # fmt: skip
    for side in OURS:
        floor = p50(runs[side][LARGE]["draft_ms"])
        budget = (1.2 * floor + p50(runs[side][SMALL]["times_ms"]), f"1.2 x that + {SMALL} p50")
        s.add(f"{side}: Pillow alone, draft decode of the {LARGE} JPEG", floor, "ms")
        s.add(f"{side} {LARGE} p50 vs that budget", p50(runs[side][LARGE]["times_ms"]), "ms", *budget,
              target="ratio <= 1.0")  # fmt: skip
    for side, img, cpu in itertools.product(OURS, images, GB_SECOND):
        billed = math.ceil(p50(runs[side][img]["times_ms"])) / 1000 * MEMORY_MB / 1024
        s.add(f"{side} {img}: USD per million at {MEMORY_MB} MB, {cpu} price", 1e6 *
              (billed * GB_SECOND[cpu] + PER_REQUEST), "USD")  # fmt: skip
    for side, r in runs.items():
        for img in images:
            r[img].update(p50=p50(r[img]["times_ms"]), p99=p99(r[img]["times_ms"]))
            phases = ", ".join(f"{k} {v:.2f}" for k, v in r[img]["phases_ms"].items())
            s.notes.append(f"{side} {img}: p99 {r[img]['p99']:.1f} ms; median phases (ms) {phases}")
    s.details = runs
    sizes = ", ".join(f"{n} {p.stat().st_size / 1e6:.2f} MB" for n, p in inputs.images.items())
    s.notes.append(
        f"{c.requests} timed requests per image and side in {c.rounds} rounds (sides in turn, "
        f"each round a new process with {c.warmup} untimed first; phases: the median of the "
        "rounds' medians); ours: app.app(event, "
        "context), API Gateway proxy event (base64 body), one onnxruntime and one OpenBLAS thread; "
        f"torch: PIL + torchvision transform + eager forward, torch.set_num_threads(1), "
        f"OMP_NUM_THREADS=1; 'rest' = routing, base64, checks, JSON; JPEGs {sizes}; cost: "
        "p50 rounded up to the ms, Lambda + REST API prices of us-east-1; arm64 rows apply arm64's "
        "price to the duration measured here (this machine cannot time arm64)"
    )
    return s


def model_only(inputs: Inputs) -> Section:
    c, s = inputs.counts, Section("model only")
    grid = {"batches": list(c.batches), "threads": list(c.threads), "repeats": c.model_repeats,
            "warmup": 2}  # fmt: skip
    paths = {p: str(inputs.models[p]) for p in ("fp32", "int8")}
    cells = ours(inputs, "fp32", {"model_only": {"paths": paths, **grid}})["model_only"]
    cells += torch_side(inputs, "model_only", **grid)
    torch = {(x["batch"], x["threads"]): p50(x["times_ms"]) / x["batch"]
             for x in cells if "torch" in x["engine"]}  # fmt: skip
    for x in cells:
        ms = p50(x["times_ms"]) / x["batch"]
        base = () if "torch" in x["engine"] else (torch[x["batch"], x["threads"]], "torch eager")
        name = f"{x['engine']}, batch {x['batch']}, {x['threads']} thread(s)"
        s.add(f"{name}: {0.6 / ms * 1000:.1f} GFLOP/s", ms, "ms/img", *base)
    s.details = {"cells": cells}
    s.notes.append(f"p50 of {c.model_repeats} runs per cell on random input; ours: the bundle's "
                   "onnxruntime; GFLOP/s from MobileNetV2's ~0.6 GFLOP per image")  # fmt: skip
    return s


def bundle(inputs: Inputs) -> Section:
    s, built = Section("bundle"), inputs.bundles
    for key in inputs.counts.more_bundles:
        built[key] = build_bundle(inputs, *key.split("-"))
    for key, b in built.items():
        limit = "Lambda limit"
        s.add(f"{key} zipped", b["zipped_mb"], "MiB", MAX_ZIPPED / MIB, limit, target="ratio <= 1")
        s.add(f"{key} unzipped", b["unzipped_mb"], "MiB", MAX_UNZIPPED / MIB, limit,
              target="ratio <= 1")  # fmt: skip
        if key.startswith("fp32"):
            s.add(f"{key} zipped with a trained fp32 MobileNetV2", b["with_trained_fp32_mb"],
                  "MiB", TARGET_ZIPPED / MIB, "project goal", target="ratio <= 1")  # fmt: skip
    s.details = built
    s.notes.append(
        "scripts/build_bundle with this run's models (random weights zip to ~9 MB, a trained fp32 "
        "MobileNetV2 to 5.8 MB: bundler/sizes.py); the stripped bundle ran before zipping: "
        + ", ".join(f"{key} {b['ran_under']}" for key, b in built.items())
    )
    return s


def training(inputs: Inputs) -> Section:
    import torch
    import torchvision

    from trainer import fit
    from trainer.data.synthetic import generate
    from trainer.evaluation.run_report import TIMING
    from trainer.learning.run import HISTORY_JSON
    from trainer.model.classifier import build_model

    c, s, runs = inputs.counts, Section("training"), {}
    data = generate(inputs.work / "data", per_class=c.train_per_class, seed=0, size=256)
    # Speed only: random weights, saved as a file (the trainer refuses a frozen "--weights none").
    weights = inputs.work / "random-mobilenet_v2.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.get_model("mobilenet_v2", weights=None).state_dict(), weights)
    # The epochs regime (images every epoch), then the default: the solved head on its cache.
    for regime in ("epochs", "solved-head"):
        run_dir = inputs.work / f"run-{regime}"
        argv = [str(data), "--run-dir", str(run_dir), "--weights", str(weights), "--epochs",
                str(c.epochs), "--batch-size", "32", "--weight-decay", "0.01", "--seed", "0",
                "--no-export", "--no-progress", "--no-int8", "--regime", regime]  # fmt: skip
        if c.input_size is not None:
            argv += ["--resize", str(c.input_size[0]), "--crop", str(c.input_size[1])]
        with contextlib.redirect_stdout(sys.stderr):  # the trainer's log is not the table
            if fit.main(argv) != 0:
                raise RuntimeError(f"python -m trainer.fit {' '.join(argv)} failed")
        timing = run_dir / TIMING
        runs[regime] = {"history": json.loads((run_dir / HISTORY_JSON).read_text()),
                       "timings": json.loads(timing.read_text()) if timing.is_file() else {}}  # fmt: skip
    threads = torch.get_num_threads()  # the trainer's choice, kept for the backbone alone
    crop = c.config().crop  # the input the trainer's runs above used
    model, x = build_model("mobilenet_v2", 4, weights="none").eval(), torch.randn(32, 3, crop, crop)
    times = []
    with torch.no_grad():
        for _ in range(4):  # the first is a warm-up
            start = time.perf_counter()
            model.features(x)
            times.append(time.perf_counter() - start)
    alone = 32 / p50(times[1:])

    def steady(key: str) -> float:  # the epochs after the first (warm caches)
        history = runs["epochs"]["history"]
        return p50([h[key] for h in history[1:] or history])

    s.add("head training (frozen backbone), whole loop", steady("train_images_per_s"), "img/s",
          alone, "backbone forward alone", target="ratio >= 0.8 (not starved by data)")  # fmt: skip
    epoch = (steady("seconds"), "epoch over images")
    solved = runs["solved-head"]["timings"]  # the default regime: a head solved on the cache
    s.add("head solved from cached features, its estimate included", solved["head_seconds"]
          + solved.get("estimate_seconds", 0.0), "s", *epoch)  # fmt: skip
    s.add(
        "building that cache (served view and mirror), once", solved["cache_seconds"], "s", *epoch
    )
    s.details = {"runs": runs, "torch_threads": threads, "backbone_alone_images_per_s": alone}
    s.notes.append(f"python -m trainer.fit --weights RANDOM.pth, {c.train_per_class} synthetic 256px "
                   f"JPEGs per class, {c.epochs} epoch(s), batch 32, {threads} torch thread(s) "
                   f"(the trainer's choice), {crop} px input on both sides; epochs: medians over the epochs "
                   "after the first")  # fmt: skip
    return s


def memory(inputs: Inputs) -> Section:
    c, s = inputs.counts, Section("memory")
    job = {"events": list(inputs.events.values()), "requests": c.memory_requests}
    r = s.details = ours(inputs, "fp32", {"memory": {**job, "warmup": c.memory_warmup}})["memory"]
    s.add(f"peak RSS over {c.memory_requests} requests", r["peak_rss_mb"], "MiB")
    s.add(f"RSS growth after {c.memory_warmup} warm-up requests", r["growth_pct"], "%",
          target="value <= 5")  # fmt: skip
    s.notes.append("one warm handler process of the unzipped fp32 bundle, the two JPEGs in turn")
    return s


SECTIONS: dict[str, Callable[[Inputs], Section]] = {
    "cold_start": cold_start, "warm_request": warm_request, "model_only": model_only,
    "bundle": bundle, "training": training, "memory": memory,
}  # fmt: skip


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def table(rows: list[Row]) -> str:
    lines = ["| section | measurement | value | baseline | ratio | target | |",
             "| --- | --- | ---: | --- | ---: | --- | --- |"]  # fmt: skip
    for r in rows:
        base = f"{fmt(r.baseline)} {r.unit} ({r.baseline_name})" if r.baseline_name else "-"
        verdict = {True: "met", False: "MISSED", None: ""}[r.met]
        lines.append(f"| {r.section} | {r.name} | {fmt(r.value)} {r.unit} | {base} | "
                     f"{fmt(r.ratio)} | {r.target or '-'} | {verdict} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    parser.add_argument("--sections", nargs="+", choices=tuple(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--json", type=Path, default=REPO / "bench-results.json")
    args = parser.parse_args(argv)
    counts, started = QUICK if args.quick else Counts(), time.perf_counter()
    cpu = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line]
    info = {"cpu_model": cpu[0].split(":", 1)[1].strip() if cpu else platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}  # fmt: skip
    sections: dict[str, Section] = {}
    with tempfile.TemporaryDirectory(prefix="skyclass-bench-") as tmp:
        inputs = prepare(Path(tmp), counts, args.sections)
        for name in args.sections:
            log(f"{name} ...")
            try:
                sections[name] = SECTIONS[name](inputs)
            except Exception as exc:  # noqa: BLE001 - reported; the other sections still run
                log(traceback.format_exc())
                sections[name] = Section(name, details={"error": f"{type(exc).__name__}: {exc}"})
    info["loadavg_end"] = os.getloadavg()
    rows = [r for s in sections.values() for r in s.rows]
    failed = [n for n, s in sections.items() if "error" in s.details]
    missed = [f"{r.section}: {r.name}" for r in rows if r.met is False]
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, Python {info['python']}; "
          f"{info['date']}; load average {info['loadavg_start'][0]:.2f} at the start, "
          f"{info['loadavg_end'][0]:.2f} at the end")  # fmt: skip
    if info["loadavg_start"][0] >= BUSY_LOAD or info["loadavg_end"][0] >= BUSY_LOAD_AFTER:
        print("WARNING: the machine was busy: every figure is inflated and noisy")
    if args.quick:
        print("WARNING: --quick: the counts are too small for the figures to mean anything")
    print(
        f"model: MobileNetV2, random weights (seed 0), trainer.exporting.graph; counts {counts}\n"
    )
    print(table(rows))
    print("\n".join(f"- {n}: {note}" for n, s in sections.items() for note in s.notes))
    met, targets = sum(r.met is True for r in rows), sum(r.met is not None for r in rows)
    print(f"\ntargets met: {met} of {targets}")
    print("".join(f"  missed: {item}\n" for item in missed), end="")
    print("".join(f"  FAILED: {n}: {sections[n].details['error']}\n" for n in failed), end="")
    document = {"machine": info, "counts": asdict(counts), "seconds": time.perf_counter() - started,
                "sections": {n: asdict(s) for n, s in sections.items()},
                "summary": {"missed": missed, "failed_sections": failed}}  # fmt: skip
    args.json.write_text(json.dumps(document, indent=1, default=str))
    log(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
