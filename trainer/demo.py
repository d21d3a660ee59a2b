"""``python -m trainer.fit --demo``: the whole pipeline offline, on a synthetic sky dataset.

1. Render (once) ``data/demo-synthetic/``: the four default classes, deterministic, labelled
   synthetic in its README.txt.
2. Train. With ImageNet weights (when torchvision can fetch them, or ``--weights PATH``): the frozen
   pretrained MobileNetV2 at the standard 224 input, head trained from a feature cache. Offline:
   random init, so the backbone must train too (frozen random features are useless); a small input
   keeps that within minutes on two cores. The choice is printed.
3. Export, publish to the API, classify one test image through the API code, say where things are.

Options typed on the command line override the demo's choices (e.g. ``--epochs``, ``--arch``).
"""

import time
from pathlib import Path
from typing import Any

from shared.paths import REPO
from shared.predictor import Predictor
from trainer.fit import build, export, log, start, train
from trainer.model import WeightsError
from trainer.options import Options
from trainer.synthetic import generate

DEMO_DATA = REPO / "data" / "demo-synthetic"
PER_CLASS = 250
IMAGE_SIZE = 96

# Pretrained features are good: only the head trains, from 2 cached augmented views per image.
PRETRAINED = {"arch": "mobilenet_v2", "epochs": 8, "cache_features": 2, "crop_scale": 0.5}
# Random init: everything trains, at a small input so it fits in minutes on a CPU.
OFFLINE = {
    "arch": "mobilenet_v3_small",
    "weights": "none",
    "unfreeze_last": -1,
    "backbone_lr_scale": 1.0,
    "lr": 3e-3,
    "resize": 64,
    "crop": 64,
    "epochs": 30,
    # Objects fill a fixed share of these images; random crops would cut them out.
    "crop_scale": 1.0,
    "rotation": 10.0,
    "color_jitter": 0.1,
}


def demo_options(base: Options, given: set[str], choice: dict[str, Any]) -> Options:
    """The demo's choices, overridden by whatever the user typed."""
    typed = {name: getattr(base, name) for name in given}
    values = {**base.to_dict(), **choice, **typed, "data": str(DEMO_DATA), "demo": True}
    if "out" not in given and "run_dir" not in given:
        values["run_dir"] = str(REPO / "runs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    return Options.from_dict(values)


def choose_model(base: Options, given: set[str]) -> tuple[Options, Any, str]:
    """Try pretrained weights; offline, fall back to random init with the backbone unfrozen."""
    weights = base.weights if "weights" in given else "imagenet"
    if weights != "none":
        options = demo_options(base, given, {**PRETRAINED, "weights": weights})
        try:
            model = build(options, 4, weights)
            return options, model, f"pretrained ({weights})"
        except WeightsError as exc:
            if "weights" in given:
                raise
            log(
                f"ImageNet weights unavailable ({str(exc).split(' (')[0]}); training offline instead"
            )
    options = demo_options(base, given, OFFLINE)
    return options, build(options, 4, options.weights), "random init"


def classify_sample(model_path: Path, image: Path) -> dict[str, Any]:
    """One image through the predictor the API serves with."""
    return Predictor.from_path(model_path).predict(image.read_bytes())


def run_demo(base: Options, given: set[str]) -> int:
    t0 = time.perf_counter()
    log(f"skyclass demo: SYNTHETIC data in {DEMO_DATA} (rendered cartoons, not photographs)")
    generate(DEMO_DATA, per_class=PER_CLASS, size=IMAGE_SIZE)
    options, model, kind = choose_model(base, given)
    if kind == "random init":
        log(
            "no pretrained weights: training from random init with the whole backbone unfrozen, "
            f"{options.arch} at {options.resize}->{options.crop} px for speed"
        )
    else:
        log(
            f"{kind} weights: frozen {options.arch} backbone at {options.resize}->{options.crop} px"
        )
    trainer = start(
        options, weights_used=kind if kind == "random init" else options.weights, model=model
    )
    outcome = train(trainer)
    if not outcome.completed:
        return outcome.status
    accuracy = outcome.best["test_accuracy"]
    log(f"demo training done: synthetic test accuracy {accuracy:.1%}")
    if options.no_export:
        log(f"run folder: {outcome.run_dir} (export skipped: --no-export)")
        return 0
    result = export(outcome.run_dir, publish=True, debug=options.debug)
    if result is None:
        return 1
    served = result.published_path or result.model_path
    image, label = trainer.manifest.split("test")[0]
    answer = classify_sample(served, image)
    log(
        f"API check: {image.name} (true: {trainer.manifest.labels[label]}) -> {answer['label']} "
        f"({answer['confidence']:.1%}), {sum(answer['timing_ms'].values()):.1f} ms"
    )
    log("")
    log(f"run folder:      {outcome.run_dir} (report.md, plots, checkpoints)")
    log(f"exported model:  {result.model_path}")
    log(f"published to:    {result.published_path}")
    log(f"synthetic data:  {DEMO_DATA}")
    log(f"total time:      {time.perf_counter() - t0:.0f}s")
    return 0
