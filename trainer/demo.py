"""``python -m trainer.demo``: the whole pipeline offline, on a synthetic sky dataset.

1. Render (once) ``data/demo-synthetic/``: the four default classes, deterministic, labelled
   synthetic in its README.txt.
2. Train through :func:`trainer.fit.fit`. With ImageNet weights (when torchvision can fetch them,
   or ``--weights PATH``): the frozen pretrained MobileNetV2, head trained from cached views.
   Offline: random init, so the backbone must train too (frozen random features are useless); a
   small input keeps that within minutes on two cores. The choice is printed.
3. Export, publish to the API, classify one test image through the API's predictor.

Any ``trainer.fit`` option typed on the command line overrides the demo's choice (``--epochs 5``).
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

from shared.cli import run_cli
from shared.paths import REPO
from shared.predictor import Predictor
from trainer.data.manifest import Manifest
from trainer.data.synthetic import generate
from trainer.fit import build, fit, log, parse_typed
from trainer.learning.config import TrainConfig
from trainer.model.backbones import WeightsError

DEMO_DATA = REPO / "data" / "demo-synthetic"
PER_CLASS = 250
IMAGE_SIZE = 96

# Pretrained features are good: only the head trains, from cached views of every image.
PRETRAINED: dict[str, Any] = {}  # the default recipe as it stands
# Random init: everything trains, at a small input so it fits in minutes on a CPU.
OFFLINE: dict[str, Any] = {
    "arch": "mobilenet_v3_small",
    "weights": "none",
    "unfreeze_last": -1,
    "head": "mlp",
    "backbone_lr_scale": 1.0,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "resize": 64,
    "crop": 64,
    "epochs": 30,
    # Objects fill a fixed share of these images; random crops would cut them out.
    "crop_scale": 1.0,
    "rotation": 10.0,
    "color_jitter": 0.1,
}


def demo_config(typed: dict[str, Any], choice: dict[str, Any]) -> TrainConfig:
    """The demo's choices, overridden by whatever the user typed."""
    return TrainConfig(**{**choice, **typed, "data": str(DEMO_DATA)})


def choose_model(typed: dict[str, Any]) -> tuple[TrainConfig, Any, str]:
    """Try pretrained weights; offline, fall back to random init with the backbone unfrozen."""
    if typed.get("weights") != "none":
        config = demo_config(typed, PRETRAINED)
        try:
            return config, build(config, 4, config.weights), f"pretrained ({config.weights})"
        except WeightsError as exc:
            if "weights" in typed:
                raise
            log(f"ImageNet weights unavailable ({str(exc).split(' (')[0]}); training offline")
    config = demo_config(typed, OFFLINE)
    return config, build(config, 4, config.weights), "random init"


def main(argv: Sequence[str]) -> int:
    t0 = time.perf_counter()
    typed, flags = parse_typed(argv)
    log(f"skyclass demo: SYNTHETIC data in {DEMO_DATA} (rendered cartoons, not photographs)")
    generate(DEMO_DATA, per_class=PER_CLASS, size=IMAGE_SIZE)
    config, model, kind = choose_model(typed)
    log(f"{kind} weights: {config.arch} at {config.resize}->{config.crop} px, "
        f"{'frozen backbone' if config.frozen else 'whole network trained'}")  # fmt: skip
    if flags.run_dir is None and flags.out == "runs":
        run_dir = REPO / "runs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        flags = dataclasses.replace(flags, run_dir=str(run_dir))
    flags = dataclasses.replace(flags, publish=True)
    result = fit(config, flags, model=model, weights_used=kind)
    if not result.completed or result.export is None:
        return result.status
    exported = result.export
    served = exported.published_path or exported.served_path
    manifest = Manifest.load(result.run_dir)
    image, label = manifest.split("test")[0]
    answer = Predictor.from_path(served).predict(image.read_bytes())
    log(f"API check: {image.name} (true: {manifest.labels[label]}) -> {answer['label']} "
        f"({answer['confidence']:.1%}), {sum(answer['timing_ms'].values()):.1f} ms")  # fmt: skip
    log("")
    log(f"run folder:      {result.run_dir} (report.md, plots, checkpoints)")
    log(f"served model:    {exported.served_path}")
    log(f"published to:    {exported.published_path}")
    log(f"synthetic data:  {DEMO_DATA}")
    log(f"total time:      {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.demo"))
