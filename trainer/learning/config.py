"""``python -m trainer.fit`` options, split in two: *what* to train and *how* to run.

:class:`TrainConfig` is what a run trains (data, model, recipe, split, checks): it is frozen when the
run starts, saved as ``config.json`` and inside every checkpoint, and ``--resume`` reads it back.
:class:`RunFlags` is how this invocation runs (device, threads, progress, stopping, publishing):
it may differ from one invocation to the next. One parser builds both; a config option typed
together with ``--resume`` is refused, since the run keeps the config it started with.
"""

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from shared.cli import UsageError
from shared.spec import DEFAULT_SPEC, PreprocessSpec, SpecError
from trainer.data.dedup import MAX_DISTANCE
from trainer.data.images import AugmentOptions
from trainer.learning.options import check_types
from trainer.learning.options import opt as _opt
from trainer.model.backbones import ARCHS

SOLVED_HEAD, EPOCHS = (
    "solved head",
    "epochs",
)  # the two regimes (trainer.learning.solved_head, .epochs)
# The images each regime makes its choices on (the temperature, the "unknown" threshold).
CHOSEN_ON = {
    SOLVED_HEAD: "out-of-fold scores of the train + val images (5-fold cross-validation)",
    EPOCHS: "the val images",
}
SELECTION_METRICS = ("balanced_accuracy", "accuracy", "macro_f1")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("onecycle", "cosine", "none")
BALANCE = ("auto", "none", "prior", "sampler", "loss")
REGIMES = ("auto", "solved-head", "epochs")
# The solved head's defaults, measured on realdev (docs/training.md): a 320-pixel input (objects
# are often small in the frame), the image and its mirror averaged when served, no augmented views
# (random crops at this size often cut the object out).
DEFAULT_RESIZE, DEFAULT_CROP = 366, 320
# A test split is kept when the smallest class would still give it this many photos at the usual
# 20%; below that the estimate comes from cross-validation and every photo trains the served model.
TEST_SPLIT_MIN_PHOTOS = 30
TEST_SHARE = 0.2
HEADS = ("linear", "mlp")
DEFAULT_LR = {"adamw": 1e-3, "sgd": 1e-2}
DEFAULT_MAX_MISCLASSIFIED = 24  # images per misclassified grid in every evaluation report


@dataclass(frozen=True)
class TrainConfig:
    """What a run trains. Every field is a ``--flag`` (underscores become dashes)."""

    data: str = _opt("the data folder", default="")
    # model
    arch: str = _opt("backbone", default="mobilenet_v2", choices=tuple(ARCHS))
    weights: str = _opt(
        "imagenet (torchvision's weights API, cached after one download), none, or a state-dict "
        "path",
        default="imagenet",
    )
    unfreeze_last: int = _opt(
        "fine-tune the last N backbone blocks, or 'all' (0: frozen backbone, only the head trains)",
        default=0,
        metavar="N|all",
    )
    head: str = _opt(
        "the classifier on the pooled features: linear (with a frozen backbone, the solved head: "
        "solved on cached views, its L2 strength and temperature chosen by cross-validation), or "
        "mlp (Linear-ReLU-Linear, trained in epochs)",
        default="linear",
        choices=HEADS,
    )
    dropout: float = _opt("dropout before the head's layers", default=0.2)
    # optimisation
    epochs: int = _opt(
        "epochs to train, in the epochs regime (--unfreeze-last, --head mlp or --views 0); the "
        "best on val is kept",
        default=10,
    )
    batch_size: int = _opt("images (or cached feature rows) per step", default=32)
    optimizer: str = _opt("optimizer", default="adamw", choices=OPTIMIZERS)
    lr: float | None = _opt("peak learning rate (adamw 1e-3, sgd 1e-2)", default=None)
    momentum: float = _opt("SGD momentum", default=0.9)
    weight_decay: float = _opt("weight decay, in the epochs regime", default=1e-4)
    backbone_lr_scale: float = _opt(
        "learning rate of unfrozen backbone blocks relative to the head", default=0.1
    )
    scheduler: str = _opt("per-step learning-rate schedule", default="onecycle", choices=SCHEDULERS)
    label_smoothing: float = _opt("label smoothing of the loss", default=0.0)
    balance: str = _opt(
        "class imbalance, one correction: auto (the solved head: prior; epochs: loss when the "
        "largest and smallest training classes differ by 1.5x or more), prior (the solved head's "
        "logit adjustment, -log prior added to the logits), loss (class-weighted loss), sampler "
        "(weighted sampling, in epochs) or none",
        default="auto",
        choices=BALANCE,
    )
    select: str = _opt(
        "the val metric that picks the epoch, in the epochs regime",
        default="balanced_accuracy",
        choices=SELECTION_METRICS,
    )
    regime: str = _opt(
        "how the head learns: the solved head (a linear head solved on cached features of the "
        "frozen backbone) or epochs (SGD over images); auto: the solved head when the backbone is "
        "frozen and the head linear",
        default="auto",
        choices=REGIMES,
    )
    views: int = _opt(
        "the solved head: augmented views of every train and val image whose features it also "
        "learns from (0: the served view alone)",
        default=0,
        metavar="K",
    )
    head_c: float = _opt(
        "the solved head's inverse L2 strength (scikit-learn's C), fixed", default=0.1
    )
    mirror: bool = _opt(
        "serve the average of the image and its mirror image (one batch of two per request)",
        default=True,
        action=argparse.BooleanOptionalAction,
    )
    calibrate: bool = _opt(
        "fit a softmax temperature (out of fold for the solved head, on val in epochs) and fold "
        "it into the exported model",
        default=True,
        action=argparse.BooleanOptionalAction,
    )
    # data
    negatives: str = _opt(
        "a folder of photos that are none of the classes (sub-folders are kinds, for the "
        "report): the head learns to answer 'unknown' for them (an extra background class)",
        default="",
        metavar="DIR",
    )
    accept_rate: float = _opt(
        "share of the in-class val images the 'unknown' threshold lets through", default=0.95
    )
    seed: int = _opt("seed for the split, shuffling, augmentation and initialisation", default=0)
    val_fraction: float = _opt(
        "share of each class held out for validation (when DATA has no val/)", default=0.2
    )
    test_fraction: float | None = _opt(
        "share of each class held out for the final test (when DATA has no test/); 0: none, the "
        "estimate by cross-validation (solved head); auto: 0.2 in epochs, and for the solved head "
        f"when the smallest class has {int(TEST_SPLIT_MIN_PHOTOS / TEST_SHARE)} photos or more",
        default=None,
        metavar="F|auto",
    )
    duplicate_distance: int = _opt(
        "near-duplicates: perceptual-hash bits (of 256) within which two images count as copies "
        "and stay in one split (-1: only byte-identical files)",
        default=MAX_DISTANCE,
    )
    resize: int = _opt("shorter side before the crop", default=DEFAULT_RESIZE)
    crop: int = _opt("network input size", default=DEFAULT_CROP)
    # augmentation
    crop_scale: float = _opt(
        "RandomResizedCrop's smallest area fraction; 1 turns it off", default=0.08
    )
    rotation: float = _opt("random rotation, +-degrees; 0 off", default=15.0)
    color_jitter: float = _opt("brightness/contrast/saturation jitter; 0 off", default=0.2)
    hflip: bool = _opt(
        "random horizontal flip", default=True, action=argparse.BooleanOptionalAction
    )
    # export
    int8: bool = _opt(
        "also build an INT8 model and serve it when it passes the gate on val",
        default=True,
        action=argparse.BooleanOptionalAction,
    )
    int8_max_drop: float = _opt(
        "largest val balanced-accuracy loss (points) for which INT8 is served", default=1.0
    )
    calibration_images: int = _opt("training images that calibrate INT8", default=160)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def frozen(self) -> bool:
        return self.unfreeze_last == 0

    @property
    def augment(self) -> AugmentOptions:
        return AugmentOptions(self.crop_scale, self.rotation, self.color_jitter, self.hflip)

    @property
    def spec(self) -> PreprocessSpec:
        return dataclasses.replace(DEFAULT_SPEC, resize=self.resize, crop=self.crop)

    @property
    def chosen_on(self) -> str:
        return CHOSEN_ON[self.regime_name]

    @property
    def regime_name(self) -> str:
        """The solved head (the default: frozen backbone, linear head), or epochs."""
        if self.regime == "auto":
            return SOLVED_HEAD if self.frozen and self.head == "linear" else EPOCHS
        return SOLVED_HEAD if self.regime == "solved-head" else EPOCHS

    def head_outputs(self, classes: int) -> int:
        """Outputs of the classifier's head: one more, the background, for negatives in epochs
        (the solved head keeps its background head in the known-score module)."""
        return classes + bool(self.negatives and self.regime_name == EPOCHS)

    def test_share(self, smallest_class: int) -> float:
        """``--test-fraction``, with auto resolved for a folder whose smallest class has
        ``smallest_class`` photos."""
        if self.test_fraction is not None:
            return self.test_fraction
        large = smallest_class * TEST_SHARE >= TEST_SPLIT_MIN_PHOTOS
        return TEST_SHARE if self.regime_name == EPOCHS or large else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RunFlags:
    """How this invocation runs; never part of what was trained."""

    resume: str | None = _opt(
        "continue an interrupted run exactly where its last checkpoint left it",
        default=None,
        metavar="RUN_DIR",
    )
    out: str = _opt("parent folder of new runs", default="runs")
    run_dir: str | None = _opt("exact folder for this run", default=None)
    stop_after: int | None = _opt(
        "stop (resumable) after this epoch, or after this many feature views (the solved head)",
        default=None,
        metavar="N",
    )
    feature_cache: str | None = _opt(
        "the solved head: keep every photo's served (and mirror) features in this folder, keyed "
        "by the photo's bytes and the backbone, so another run on the same photos skips them",
        default=None,
        metavar="DIR",
    )
    no_export: bool = _opt("do not export at the end", default=False, action="store_true")
    publish: bool = _opt(
        "publish the exported model to the API (classify_api/chalicelib/model/)",
        default=False,
        action="store_true",
    )
    publish_to: str | None = _opt(
        "with --publish: write the served model here instead of the API's model path",
        default=None,
        metavar="PATH",
    )
    device: str = _opt(
        "auto: CUDA (mixed precision) when present, else CPU",
        default="auto",
        choices=("auto", "cpu", "cuda"),
    )
    workers: int = _opt("data loader processes (-1: 0 on <= 2 cores, else up to 4)", default=-1)
    threads: int = _opt("CPU threads for torch (0: one per core, 1 on a busy CPU)", default=0)
    progress: bool = _opt(
        "progress bars (only on a terminal)", default=True, action=argparse.BooleanOptionalAction
    )
    max_misclassified: int = _opt(
        "test images per misclassified_<class>.png grid", default=DEFAULT_MAX_MISCLASSIFIED
    )
    debug: bool = _opt("show tracebacks on errors", default=False, action="store_true")

    def __post_init__(self) -> None:
        validate(self)

    @property
    def n_workers(self) -> int:
        if self.workers >= 0:
            return self.workers
        # Two cores are better spent on the model than on a loader process.
        cpus = os.cpu_count() or 1
        return 0 if cpus <= 2 else min(4, cpus - 1)


def _train_rules(c: TrainConfig) -> list[tuple[bool, str]]:
    return [
        (c.epochs >= 1, f"--epochs must be >= 1, got {c.epochs}"),
        (c.batch_size >= 1, f"--batch-size must be >= 1, got {c.batch_size}"),
        (c.lr is None or c.lr > 0, f"--lr must be > 0, got {c.lr}"),
        (0 <= c.dropout < 1, f"--dropout must be in [0, 1), got {c.dropout}"),
        (0 <= c.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
        (c.weight_decay >= 0, f"--weight-decay must be >= 0, got {c.weight_decay}"),
        (0 < c.crop_scale <= 1, f"--crop-scale must be in (0, 1], got {c.crop_scale}"),
        (0 <= c.rotation <= 180, f"--rotation must be 0..180 degrees, got {c.rotation}"),
        (c.color_jitter >= 0, f"--color-jitter must be >= 0, got {c.color_jitter}"),
        (c.views >= 0, f"--views must be >= 0, got {c.views}"),
        (0 < c.val_fraction < 1, f"--val-fraction must be in (0, 1), got {c.val_fraction}"),
        (
            c.test_fraction is None or 0 <= c.test_fraction < 1,
            f"--test-fraction must be in [0, 1) or auto, got {c.test_fraction}",
        ),
        (
            c.val_fraction + (c.test_fraction or TEST_SHARE) < 1,
            "--val-fraction + --test-fraction must leave images for training",
        ),
        (c.head_c > 0, f"--head-c must be > 0, got {c.head_c}"),
        (c.regime in REGIMES, f"--regime must be one of {', '.join(REGIMES)}"),
        (
            c.regime != "solved-head" or (c.frozen and c.head == "linear"),
            "--regime solved-head needs a frozen backbone and a linear head",
        ),
        (
            c.balance != "prior" or c.regime_name == SOLVED_HEAD,
            "--balance prior is the solved head's correction; in epochs use loss or sampler",
        ),
        (c.duplicate_distance >= -1, "--duplicate-distance must be >= -1"),
        (0 < c.accept_rate <= 1, f"--accept-rate must be in (0, 1], got {c.accept_rate}"),
        (c.int8_max_drop >= 0, "--int8-max-drop must be >= 0"),
        (c.calibration_images >= 1, "--calibration-images must be >= 1"),
        (c.arch in ARCHS, f"--arch must be one of {', '.join(ARCHS)}, got {c.arch!r}"),
        (c.head in HEADS, f"--head must be one of {', '.join(HEADS)}, got {c.head!r}"),
        (c.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
        (c.scheduler in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}"),
        (c.balance in BALANCE, f"--balance must be one of {', '.join(BALANCE)}"),
        (c.select in SELECTION_METRICS, f"--select must be one of {', '.join(SELECTION_METRICS)}"),
        (c.unfreeze_last >= -1, "--unfreeze-last must be >= 0 (or 'all')"),
        (
            not (c.frozen and c.weights == "none"),
            "--weights none with a frozen backbone would train a head on random features (a "
            "useless model): add --unfreeze-last all to train the whole network, or pass "
            "--weights imagenet or a state-dict path",
        ),
    ]


def _flag_rules(f: RunFlags) -> list[tuple[bool, str]]:
    return [
        (f.stop_after is None or f.stop_after >= 1, "--stop-after must be >= 1"),
        (f.threads >= 0, f"--threads must be >= 0, got {f.threads}"),
        (f.workers >= -1, f"--workers must be >= 0, got {f.workers}"),
        (f.max_misclassified >= 0, "--max-misclassified must be >= 0"),
        (f.device in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
    ]


def validate(options: "TrainConfig | RunFlags") -> None:
    """Raise :class:`UsageError` (one line, naming the option) for a value of the wrong type or
    one that cannot work, before any work is done. Both dataclasses call it when built, however
    they are built: the command line, the demo, a notebook, ``dataclasses.replace``, a resume."""
    check_types(options)
    rules = _train_rules(options) if isinstance(options, TrainConfig) else _flag_rules(options)
    for ok, message in rules:
        if not ok:
            raise UsageError(message)
    if isinstance(options, TrainConfig):
        try:
            options.spec  # noqa: B018 - constructing the spec validates resize/crop
        except SpecError as exc:
            raise UsageError(f"--resize/--crop: {exc}") from None
