"""The six sections: run each measurement, turn it into rows with baselines and targets.

Every function takes the prepared :class:`Inputs`, the counts (:class:`Settings`) and a scratch
folder, and returns a :class:`Section`. Ratios are always ``value / baseline``; a target says
which way is good.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.benchlib import bundle, cold, training
from scripts.benchlib.inputs import Inputs
from scripts.benchlib.results import Row, Section, Target
from scripts.benchlib.timing import summary
from scripts.benchlib.worker import run_job

SMALL, LARGE = "300x300", "4032x3024"


@dataclass(frozen=True)
class Settings:
    """How many of everything; ``--quick`` shrinks them all for a smoke test."""

    repeats: int = 5  # cold starts per side
    cold_warmup: int = 1  # untimed cold starts per side first (page cache, bytecode)
    requests: int = 100  # warm requests per image and side
    warmup: int = 10  # untimed requests before those
    model_repeats: int = 30  # session.run / forward calls per cell
    model_warmup: int = 3
    memory_requests: int = 1000
    memory_warmup: int = 100
    train_per_class: int = 32
    train_image_size: int = 256
    epochs: int = 3
    batch_size: int = 32
    cache_views: int = 2
    calibration: int = 16  # random images calibrating the benchmark's own int8 model


QUICK = Settings(
    repeats=1,
    cold_warmup=0,
    requests=2,
    warmup=0,
    model_repeats=2,
    model_warmup=0,
    memory_requests=10,
    memory_warmup=2,
    train_per_class=3,
    train_image_size=96,
    epochs=1,
    batch_size=8,
    cache_views=1,
    calibration=2,
)


def cold_start(inputs: Inputs, s: Settings, work: Path) -> Section:
    m, section = inputs.models, Section("cold start")
    runs = {
        "ours fp32": ("ours", str(m.fp32), str(inputs.events[SMALL])),
        "ours int8": ("ours", str(m.int8), str(inputs.events[SMALL])),
        "torch": ("seed", str(m.seed_state), str(inputs.images[SMALL])),
    }
    results = cold.measure(runs, s.repeats, s.cold_warmup)
    torch_ms = cold.median_of(results["torch"], "to_response_ms")
    target = Target("ratio", "<=", 0.15)
    for name in ("ours fp32", "ours int8"):
        value = cold.median_of(results[name], "to_response_ms")
        section.rows.append(
            Row(
                section.name,
                f"{name}: spawn -> first response",
                value,
                "ms",
                torch_ms,
                "torch + torchvision",
                target,
            )
        )
    keys = ("to_response_ms", "to_exit_ms", "import_ms", "load_ms", "first_request_ms")
    section.details = {
        name: {
            "median": {k: cold.median_of(rs, k) for k in keys if k in rs[0]},
            "labels": sorted({r["label"] for r in rs}),
            "runs": rs,
        }
        for name, rs in results.items()
    }
    section.notes.append(
        f"one raw image/jpeg POST of the {SMALL} JPEG through app.app(event, context) vs the seed's "
        f"script (import torch + torchvision, mobilenet_v2 + head, load_state_dict, transform, "
        f"predict); median of {s.repeats} fresh processes each, after {s.cold_warmup} untimed"
    )
    return section


def warm_request(inputs: Inputs, s: Settings, work: Path) -> Section:
    m, section = inputs.models, Section("warm request")
    counts = {"requests": s.requests, "warmup": s.warmup}
    events = {name: str(p) for name, p in inputs.events.items()}
    images = {name: str(p) for name, p in inputs.images.items()}
    measured = {
        "ours fp32": run_job("handler_warm", model=str(m.fp32), events=events, **counts),
        "ours int8": run_job("handler_warm", model=str(m.int8), events=events, **counts),
        "torch": run_job("torch_warm", state=str(m.seed_state), images=images, **counts),
    }
    stats = {
        side: {img: summary(r[img]["times_ms"]) for img in inputs.images}
        for side, r in measured.items()
    }
    faster = Target("ratio", "<=", 0.25, ">= 4x faster")
    for img in inputs.images:
        torch_stats = stats["torch"][img]
        for side in ("ours fp32", "ours int8"):
            ours = stats[side][img]
            section.rows += [
                Row(
                    section.name,
                    f"{side} {img} p50",
                    ours["p50"],
                    "ms",
                    torch_stats["p50"],
                    "torch p50",
                    faster,
                ),
                Row(
                    section.name,
                    f"{side} {img} p99",
                    ours["p99"],
                    "ms",
                    torch_stats["p99"],
                    "torch p99",
                ),
            ]
    for side in measured:
        target = Target("ratio", "<=", 3.0) if side != "torch" else None
        section.rows.append(
            Row(
                section.name,
                f"{side}: {LARGE} p50 vs {SMALL} p50",
                stats[side][LARGE]["p50"],
                "ms",
                stats[side][SMALL]["p50"],
                f"{side} {SMALL}",
                target,
            )
        )
    torch_rss = measured["torch"]["peak_rss_mb"]
    for side in ("ours fp32", "ours int8"):
        section.rows.append(
            Row(
                section.name,
                f"{side}: peak RSS of the warm process",
                measured[side]["peak_rss_mb"],
                "MiB",
                torch_rss,
                "torch process",
            )
        )
    section.details = {
        side: {
            "summary_ms": stats[side],
            "labels": {img: r[img]["label"] for img in inputs.images},
            "stages_ms": {img: r[img].get("stages_ms") for img in inputs.images},
            "peak_rss_mb": r["peak_rss_mb"],
        }
        for side, r in measured.items()
    }
    agree = all(
        measured[side][img]["label"] == measured["torch"][img]["label"]
        for side in ("ours fp32", "ours int8")
        for img in inputs.images
    )
    section.notes += [
        f"{s.requests} timed requests per image and side after {s.warmup} untimed; ours: the whole "
        "Lambda handler (proxy event, base64 body, chalice, decode with JPEG draft, numpy "
        "preprocessing, onnxruntime, JSON); torch: PIL open + torchvision transform + eager forward",
        "top-1 labels of ours and torch " + ("agree" if agree else "DIFFER") + " on both images",
        "JPEG sizes: "
        + ", ".join(f"{n} {p.stat().st_size / 1e6:.2f} MB" for n, p in inputs.images.items()),
    ]
    return section


def model_only(inputs: Inputs, s: Settings, work: Path) -> Section:
    m, section = inputs.models, Section("model only")
    grid: dict[str, Any] = {
        "batches": [1, 8],
        "threads": [1, 2],
        "repeats": s.model_repeats,
        "warmup": s.model_warmup,
    }
    models = {"fp32": str(m.fp32), "int8": str(m.int8)}
    cells = run_job("ort_model", models=models, **grid)
    cells += run_job("torch_model", state=str(m.seed_state), **grid)
    torch_cells = {(c["batch"], c["threads"]): c for c in cells if c["engine"].startswith("torch")}
    for c in cells:
        base = torch_cells[(c["batch"], c["threads"])]
        is_torch = c is base
        section.rows.append(
            Row(
                section.name,
                f"{c['engine']}, batch {c['batch']}, {c['threads']} thread(s): "
                f"{c['gflops']:.1f} GFLOP/s",
                c["ms_per_image"],
                "ms/img",
                None if is_torch else base["ms_per_image"],
                "" if is_torch else "torch eager",
            )
        )
    section.details = {"cells": cells}
    section.notes.append(
        f"p50 of {s.model_repeats} runs per cell on a random (batch, 3, 224, 224) tensor; GFLOP/s "
        "from MobileNetV2's ~0.3 GMAC (0.6 GFLOP) per image"
    )
    return section


def bundle_size(inputs: Inputs, s: Settings, work: Path) -> Section:
    section = Section("bundle")
    b = bundle.measure(inputs.models.fp32)
    within = Target("ratio", "<=", 1.0, "within")
    section.rows += [
        Row(
            section.name,
            "deployment.zip, zipped",
            b["zipped_mb"],
            "MiB",
            b["limit_zipped_mb"],
            "Lambda limit",
            within,
        ),
        Row(
            section.name,
            "deployment.zip, unzipped",
            b["unzipped_mb"],
            "MiB",
            b["limit_unzipped_mb"],
            "Lambda limit",
            within,
        ),
        Row(
            section.name,
            "deployment.zip, zipped",
            b["zipped_mb"],
            "MiB",
            b["project_goal_zipped_mb"],
            "project goal",
            within,
        ),
    ]
    section.details = b
    section.notes.append(
        f"bundler.build.build for {b['target']} with the fp32 model "
        f"({b['model_zipped_mb']:.1f} MiB of it zipped), staged in a temp folder"
    )
    return section


def train_speed(inputs: Inputs, s: Settings, work: Path) -> Section:
    section = Section("training")
    t = training.measure(
        work / "training",
        training.TrainSettings(
            s.train_per_class, s.train_image_size, s.epochs, s.batch_size, s.cache_views
        ),
    )
    images, cached = t["images"]["history"], t["cached"]["history"]
    section.rows += [
        Row(
            section.name,
            "head training (frozen backbone), whole loop",
            training.steady(images, "train_images_per_s"),
            "img/s",
            training.steady(images, "train_backbone_images_per_s"),
            "backbone forward alone",
            Target("ratio", ">=", 0.8, "not starved by data loading"),
        ),
        Row(
            section.name,
            f"epoch with --cache-features {s.cache_views}",
            training.steady(cached, "seconds"),
            "s",
            training.steady(images, "seconds"),
            "epoch over images",
        ),
    ]
    cache_seconds = t["cached"]["timings"].get("cache_seconds")
    if cache_seconds is not None:
        section.rows.append(
            Row(
                section.name,
                f"building the cache ({s.cache_views} view(s), once)",
                cache_seconds,
                "s",
                training.steady(images, "seconds"),
                "epoch over images",
            )
        )
    section.details = t
    section.notes.append(
        f"python -m trainer.fit --weights none, {t['data']}, {s.epochs} epoch(s), batch "
        f"{s.batch_size}, {t['torch_threads']} torch thread(s) (the trainer's choice); medians "
        "over the epochs after the first; both throughputs come from the same training pass "
        "(trainer.loop times the backbone inside it)"
    )
    return section


def memory(inputs: Inputs, s: Settings, work: Path) -> Section:
    section = Section("memory")
    events = {name: str(p) for name, p in inputs.events.items()}
    r = run_job(
        "handler_memory",
        model=str(inputs.models.fp32),
        events=events,
        requests=s.memory_requests,
        warmup=s.memory_warmup,
    )
    section.rows += [
        Row(section.name, f"peak RSS over {s.memory_requests} requests", r["peak_rss_mb"], "MiB"),
        Row(
            section.name,
            f"RSS growth after {s.memory_warmup} warm-up requests",
            r["growth_pct"],
            "%",
            target=Target("value", "<=", 5.0),
        ),
    ]
    section.details = r
    section.notes.append(
        "one warm handler process (fp32 model), requests alternating the two JPEGs; RSS from "
        f"/proc/self/status: {r['rss_after_warmup_mb']:.0f} MiB after warm-up, "
        f"{r['rss_end_mb']:.0f} MiB at the end"
    )
    return section


SectionFn = Callable[[Inputs, Settings, Path], Section]
SECTIONS: dict[str, SectionFn] = {
    "cold_start": cold_start,
    "warm_request": warm_request,
    "model_only": model_only,
    "bundle": bundle_size,
    "training": train_speed,
    "memory": memory,
}
