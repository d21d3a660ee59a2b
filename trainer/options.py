"""``python -m trainer.fit`` options: the parser, the resolved :class:`Options`, and their checks.

The resolved options are saved as ``options.json`` in the run folder and inside every checkpoint;
``--resume`` reads them back, so only options about *how to run* (not *what to train*) may be
given again when resuming.
"""

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.cli import UsageError
from shared.spec import DEFAULT_SPEC, PreprocessSpec, SpecError
from trainer.augment import NO_AUGMENT, AugmentOptions
from trainer.model import ARCHS

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("onecycle", "cosine", "none")
BALANCE = ("none", "sampler", "loss")
DEFAULT_LR = {"adamw": 1e-3, "sgd": 1e-2}
# What may be passed together with --resume: it changes how the run proceeds, not what it trains.
RESUMABLE = {
    "resume",
    "no_export",
    "publish",
    "debug",
    "stop_after",
    "device",
    "workers",
    "progress",
}


@dataclass(frozen=True)
class Options:
    data: str | None = None
    demo: bool = False
    resume: str | None = None
    out: str = "runs"
    run_dir: str | None = None
    arch: str = "mobilenet_v2"
    weights: str = "imagenet"
    unfreeze_last: int = 0  # -1: every block
    dropout: float = 0.2
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    backbone_lr_scale: float = 0.1
    scheduler: str = "onecycle"
    label_smoothing: float = 0.0
    seed: int = 0
    test_fraction: float = 0.3
    balance: str = "none"
    resize: int = DEFAULT_SPEC.resize
    crop: int = DEFAULT_SPEC.crop
    crop_scale: float = 0.08
    rotation: float = 15.0
    color_jitter: float = 0.2
    hflip: bool = True
    cache_features: int = 0
    device: str = "auto"
    workers: int = -1  # -1: automatic
    threads: int = 0  # 0: torch's default (one per core)
    no_export: bool = False
    publish: bool = False
    stop_after: int | None = None
    progress: bool = True
    max_misclassified: int = 24
    debug: bool = False

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def augment(self) -> AugmentOptions:
        return AugmentOptions(self.crop_scale, self.rotation, self.color_jitter, self.hflip)

    @property
    def spec(self) -> PreprocessSpec:
        return dataclasses.replace(DEFAULT_SPEC, resize=self.resize, crop=self.crop)

    @property
    def n_workers(self) -> int:
        if self.workers >= 0:
            return self.workers
        # Two cores are better spent on the model than on a loader process.
        cpus = os.cpu_count() or 1
        return 0 if cpus <= 2 else min(4, cpus - 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Options":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _unfreeze(text: str) -> int:
    if text == "all":
        return -1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of blocks or 'all', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (or 'all')")
    return value


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The parser; with ``defaults=False`` unset options are absent (to see what was typed)."""
    d = Options() if defaults else None

    def default(name: str) -> Any:
        return getattr(d, name) if d is not None else argparse.SUPPRESS

    p = argparse.ArgumentParser(
        prog="python -m trainer.fit",
        description="Transfer learning on an image folder (one sub-folder per class): train, "
        "report, checkpoint, export. `--demo` runs offline on a synthetic sky dataset.",
        argument_default=argparse.SUPPRESS if not defaults else None,
    )
    p.add_argument(
        "data",
        nargs="?",
        default=default("data"),
        metavar="DATA",
        help="folder with one sub-folder per class, or with train/ and test/ inside",
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--demo",
        action="store_true",
        default=default("demo"),
        help="render a synthetic dataset, train, export, publish and classify a sample",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=default("resume"),
        help="continue an interrupted run exactly where its last checkpoint left it",
    )
    run.add_argument(
        "--out", default=default("out"), help="parent folder of new runs (default runs/)"
    )
    run.add_argument("--run-dir", default=default("run_dir"), help="exact folder for this run")
    run.add_argument(
        "--stop-after",
        type=int,
        metavar="EPOCH",
        default=default("stop_after"),
        help="stop (resumable) after this epoch, e.g. to split a long run",
    )
    run.add_argument(
        "--no-export",
        action="store_true",
        default=default("no_export"),
        help="do not export to ONNX at the end",
    )
    run.add_argument(
        "--publish",
        action="store_true",
        default=default("publish"),
        help="publish the exported model to the API (classify_api/chalicelib/model/)",
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=default("device"),
        help="auto: CUDA (with mixed precision) when present, else CPU",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=default("workers"),
        help="data loader processes (default: 0 on <= 2 cores, else up to 4)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=default("threads"),
        help="CPU threads for torch (default: one per core; 1 is faster on a busy machine)",
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=default("progress"),
        help="no progress bars (they only show on a terminal anyway)",
    )
    run.add_argument(
        "--max-misclassified",
        type=int,
        default=default("max_misclassified"),
        help="images per misclassified_<class>.png grid (default 24)",
    )
    run.add_argument(
        "--debug", action="store_true", default=default("debug"), help="show tracebacks on errors"
    )

    data = p.add_argument_group("data")
    data.add_argument(
        "--test-fraction",
        type=float,
        default=default("test_fraction"),
        help="share of each class held out for test when DATA is not pre-split (0.3)",
    )
    data.add_argument(
        "--seed",
        type=int,
        default=default("seed"),
        help="seed for split, shuffling, augmentation, init",
    )
    data.add_argument(
        "--balance",
        choices=BALANCE,
        default=default("balance"),
        help="counter class imbalance: weighted sampler or weighted loss",
    )
    data.add_argument(
        "--resize", type=int, default=default("resize"), help="shorter side before the crop (256)"
    )
    data.add_argument("--crop", type=int, default=default("crop"), help="network input size (224)")

    aug = p.add_argument_group("augmentation (training only; test uses the shared preprocessing)")
    aug.add_argument(
        "--crop-scale",
        type=float,
        default=default("crop_scale"),
        help="RandomResizedCrop smallest area fraction (0.08); 1 turns it off",
    )
    aug.add_argument(
        "--rotation",
        type=float,
        default=default("rotation"),
        help="random rotation ±degrees (15); 0 off",
    )
    aug.add_argument(
        "--color-jitter",
        type=float,
        default=default("color_jitter"),
        help="brightness/contrast/saturation jitter (0.2); 0 off",
    )
    aug.add_argument(
        "--hflip",
        action=argparse.BooleanOptionalAction,
        default=default("hflip"),
        help="random horizontal flip (on)",
    )
    aug.add_argument(
        "--no-augment",
        action="store_true",
        default=argparse.SUPPRESS,
        help="turn every augmentation off",
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--arch", choices=tuple(ARCHS), default=default("arch"), help="backbone (mobilenet_v2)"
    )
    model.add_argument(
        "--weights",
        default=default("weights"),
        help="imagenet (torchvision, cached after the first download), none, or a state-dict path",
    )
    model.add_argument(
        "--unfreeze-last",
        type=_unfreeze,
        default=default("unfreeze_last"),
        metavar="N|all",
        help="fine-tune the last N feature blocks (0: only the head trains)",
    )
    model.add_argument(
        "--dropout", type=float, default=default("dropout"), help="head dropout (0.2)"
    )

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=default("epochs"))
    opt.add_argument("--batch-size", type=int, default=default("batch_size"))
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=default("optimizer"))
    opt.add_argument(
        "--lr", type=float, default=default("lr"), help="peak learning rate (adamw 1e-3, sgd 1e-2)"
    )
    opt.add_argument(
        "--momentum", type=float, default=default("momentum"), help="SGD momentum (0.9)"
    )
    opt.add_argument("--weight-decay", type=float, default=default("weight_decay"))
    opt.add_argument(
        "--backbone-lr-scale",
        type=float,
        default=default("backbone_lr_scale"),
        help="learning rate of unfrozen backbone blocks relative to the head (0.1)",
    )
    opt.add_argument("--scheduler", choices=SCHEDULERS, default=default("scheduler"))
    opt.add_argument("--label-smoothing", type=float, default=default("label_smoothing"))
    opt.add_argument(
        "--cache-features",
        type=int,
        default=default("cache_features"),
        metavar="K",
        help="frozen backbone only: compute features of K augmented views per training "
        "image once, then train the head from that cache (fast on CPU)",
    )
    return p


def given_options(argv: Sequence[str]) -> set[str]:
    """Names of the options actually typed on the command line."""
    return set(vars(build_parser(defaults=False).parse_args(argv)))


def parse(argv: Sequence[str]) -> Options:
    ns = vars(build_parser().parse_args(argv))
    if ns.pop("no_augment", False):
        ns.update(dataclasses.asdict(NO_AUGMENT))
    return Options(**ns)


def validate(o: Options) -> None:
    """Raise :class:`UsageError` for values that cannot work, before any work is done."""
    checks = [
        (o.epochs >= 1, f"--epochs must be >= 1, got {o.epochs}"),
        (o.batch_size >= 1, f"--batch-size must be >= 1, got {o.batch_size}"),
        (o.lr is None or o.lr > 0, f"--lr must be > 0, got {o.lr}"),
        (0 <= o.dropout < 1, f"--dropout must be in [0, 1), got {o.dropout}"),
        (
            0 <= o.label_smoothing < 1,
            f"--label-smoothing must be in [0, 1), got {o.label_smoothing}",
        ),
        (0 < o.crop_scale <= 1, f"--crop-scale must be in (0, 1], got {o.crop_scale}"),
        (0 <= o.rotation <= 180, f"--rotation must be 0..180 degrees, got {o.rotation}"),
        (o.color_jitter >= 0, f"--color-jitter must be >= 0, got {o.color_jitter}"),
        (o.cache_features >= 0, f"--cache-features must be >= 0, got {o.cache_features}"),
        (o.stop_after is None or o.stop_after >= 1, "--stop-after must be >= 1"),
        (o.threads >= 0, f"--threads must be >= 0, got {o.threads}"),
        (o.workers >= -1, f"--workers must be >= 0, got {o.workers}"),
        (o.max_misclassified >= 0, "--max-misclassified must be >= 0"),
        (
            o.cache_features == 0 or o.unfreeze_last == 0,
            "--cache-features needs a frozen backbone: drop --unfreeze-last or --cache-features",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    try:
        o.spec  # noqa: B018 - constructing the spec validates resize/crop
    except SpecError as exc:
        raise UsageError(f"--resize/--crop: {exc}") from None
