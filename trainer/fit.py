"""``python -m trainer.fit DATA``: transfer learning with reports, checkpoints, resume and export.

The flow: check options -> build the model (fails fast if weights are missing) -> scan, clean and
split the data (``split.json``) -> class statistics and a picture of augmented samples -> epochs,
each ending in an atomic checkpoint (``last.pt``, and ``best.pt`` when test accuracy improves) and
refreshed metrics -> final reports for the best model -> ``trainer.export`` (unless ``--no-export``).
``--resume RUN_DIR`` rebuilds the same state from ``last.pt`` and carries on; Ctrl-C keeps the
last completed epoch and says how to continue.
"""

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shared import LabelError, SpecError
from shared.cli import EXIT_INTERRUPTED, UsageError, one_line, run_cli
from shared.decode import DecodeError
from shared.paths import REPO
from trainer import reports
from trainer.augment import denormalize, eval_transform, train_transform
from trainer.checkpoint import BEST, LAST, CheckpointError, load_checkpoint, save_checkpoint
from trainer.cleaning import write_skipped
from trainer.data import class_counts, discover, prepare_split
from trainer.images import ImageDataset
from trainer.loop import (
    Engine,
    Optim,
    Phase,
    Predictions,
    epoch_seed,
    evaluate,
    evaluate_cached,
    extract_features,
    make_loader,
    train_cached_epoch,
    train_epoch,
)
from trainer.manifest import Manifest
from trainer.metrics import confusion_matrix, macro_f1, per_class
from trainer.model import Classifier, build_model
from trainer.options import RESUMABLE, Options, given_options, parse, validate
from trainer.plots import class_counts_png, image_grid_png

SAMPLE_GRID = 18


def log(message: str) -> None:
    print(message, flush=True)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpu_threads(requested: int) -> int:
    """``--threads``, or automatically one per core unless the machine is already busy.

    Torch's CPU threads spin while waiting for each other; on a CPU that other processes keep
    busy (load average >= cores) two threads measured 5-20x slower than one, so take one then.
    """
    if requested:
        return requested
    cores = os.cpu_count() or 1
    if cores > 1 and os.getloadavg()[0] >= cores:
        log(f"the CPU is busy (load {os.getloadavg()[0]:.1f} on {cores} cores): using 1 thread")
        return 1
    return torch.get_num_threads()


def new_run_dir(options: Options) -> Path:
    if options.run_dir:
        run_dir = Path(options.run_dir)
        if (run_dir / LAST).exists():
            raise UsageError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                "or pick another --run-dir"
            )
        return run_dir
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{options.arch}"
    run_dir = Path(options.out) / stamp
    n = 2
    while run_dir.exists():
        run_dir = Path(options.out) / f"{stamp}-{n}"
        n += 1
    return run_dir


@dataclass
class RunInfo:
    """What identifies a run; written into every checkpoint."""

    run_dir: Path
    run_id: str
    created: str
    git_commit: str
    weights_used: str
    class_counts: dict[str, dict[str, int]]


@dataclass
class Outcome:
    run_dir: Path
    status: int
    completed: bool
    best: dict[str, Any] = field(default_factory=dict)


def _trainable_blocks(model: Classifier, unfreeze_last: int) -> list[nn.Module]:
    n = len(model.blocks) if unfreeze_last < 0 else min(unfreeze_last, len(model.blocks))
    return model.freeze_backbone(n)


def fast_batchnorm(blocks: list[nn.Module], momentum: float = 0.1) -> None:
    """Let BatchNorm running statistics keep up with weights trained from random init.

    MobileNetV3 uses momentum 0.01, right for fine-tuning but far too slow when every weight is
    still moving: after a few hundred steps the running statistics lag so much that the model in
    eval mode predicts one class. Only affects training; exported models carry the statistics.
    """
    for block in blocks:
        for module in block.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = max(module.momentum or 0.0, momentum)


class Trainer:
    """One run's training state and the epoch loop around it."""

    def __init__(self, options: Options, manifest: Manifest, model: Classifier, info: RunInfo):
        self.o, self.manifest, self.model, self.info = options, manifest, model, info
        self.run_dir = info.run_dir
        self.spec = options.spec
        self.device = resolve_device(options.device)
        torch.set_num_threads(cpu_threads(options.threads))
        self.model.to(self.device)
        blocks = _trainable_blocks(model, options.unfreeze_last)
        self.frozen = not blocks
        if options.weights == "none":
            fast_batchnorm(blocks)
        lr = options.learning_rate
        groups = [{"params": list(model.head.parameters()), "lr": lr}]
        backbone = [p for block in blocks for p in block.parameters()]
        if backbone:
            groups.append({"params": backbone, "lr": lr * options.backbone_lr_scale})
        self.optimizer = self._optimizer(groups)
        self.train_items = manifest.split("train")
        self.test_items = manifest.split("test")
        self.train_set = ImageDataset(
            self.train_items, train_transform(self.spec, options.augment), self.spec.resize
        )
        self.test_set = ImageDataset(self.test_items, eval_transform(self.spec), self.spec.resize)
        n_labels = len(manifest.labels)
        counts = np.bincount([y for _, y in self.train_items], minlength=n_labels).astype(
            np.float64
        )
        self.sample_weights = None
        class_weight = None
        if options.balance == "sampler":
            self.sample_weights = torch.tensor(
                [1.0 / counts[y] for _, y in self.train_items], dtype=torch.double
            )
        elif options.balance == "loss":
            class_weight = torch.tensor(counts.sum() / (n_labels * counts), dtype=torch.float32)
        self.drop_last = not self.frozen and len(self.train_set) > options.batch_size
        n_train = len(self.train_set)
        steps = (
            n_train // options.batch_size
            if self.drop_last
            else (n_train + options.batch_size - 1) // options.batch_size
        )
        self.scheduler = self._scheduler(steps * options.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda")
        self.optim = Optim(self.optimizer, self.scheduler, self.scaler)
        smoothing = options.label_smoothing
        weight = class_weight.to(self.device) if class_weight is not None else None
        self.train_engine = Engine(
            self.device,
            nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing),
            options.progress,
        )
        self.eval_engine = Engine(self.device, nn.CrossEntropyLoss(), options.progress)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_metric = -1.0
        self.best_epoch = 0
        self.best_probabilities: np.ndarray | None = None
        self.cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.timings: dict[str, float] = {}

    def _optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        o = self.o
        if o.optimizer == "sgd":
            return torch.optim.SGD(
                groups,
                lr=o.learning_rate,
                momentum=o.momentum,
                weight_decay=o.weight_decay,
                nesterov=True,
            )
        return torch.optim.AdamW(groups, lr=o.learning_rate, weight_decay=o.weight_decay)

    def _scheduler(self, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        # Both schedules step per batch, so they follow the same curve however long an epoch is.
        if self.o.scheduler == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=[g["lr"] for g in self.optimizer.param_groups],
                total_steps=max(1, total_steps),
            )
        if self.o.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(1, total_steps)
            )
        return None

    # -- state ---------------------------------------------------------------------------------

    def payload(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Everything a checkpoint holds (the key list in trainer/checkpoint.py, plus history)."""
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "arch": self.model.arch,
            "labels": list(self.manifest.labels),
            "spec": self.spec.to_dict(),
            "dropout": self.o.dropout,
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "epoch": self.epoch,
            "metrics": metrics,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler else None,
            "scaler_state": self.scaler.state_dict(),
            "rng_state": rng,
            "options": self.o.to_dict(),
            "class_counts": self.info.class_counts,
            "split_manifest_sha256": self.manifest.sha256(),
            "run_id": self.info.run_id,
            "git_commit": self.info.git_commit,
            "created": self.info.created,
            "weights_used": self.info.weights_used,
            "history": self.history,
            "test_probabilities": self.best_probabilities,
        }

    def restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        if self.scheduler is not None and payload.get("scheduler_state"):
            self.scheduler.load_state_dict(payload["scheduler_state"])
        if payload.get("scaler_state"):
            self.scaler.load_state_dict(payload["scaler_state"])
        self.epoch = int(payload["epoch"])
        self.history = list(payload.get("history") or [])
        self.best_metric = float(payload["best_metric"])
        self.best_epoch = int(payload.get("best_epoch") or 0)
        self.best_probabilities = payload.get("test_probabilities")
        rng = payload.get("rng_state") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "numpy" in rng:
            np.random.set_state(rng["numpy"])

    # -- passes --------------------------------------------------------------------------------

    def samples_png(self) -> None:
        """A grid of augmented training images with labels: what the network actually sees."""
        loader = make_loader(self.train_set, SAMPLE_GRID, seed=self.o.seed, workers=0, shuffle=True)
        x, y = next(iter(loader))
        labels = self.manifest.labels
        image_grid_png(
            self.run_dir / reports.SAMPLES,
            list(denormalize(x, self.spec)),
            [labels[int(i)] for i in y],
            f"augmented training samples ({self.o.augment.describe()})",
        )

    def build_cache(self) -> None:
        """Backbone features for K augmented views of every training image and for the test set."""
        k, o = self.o.cache_features, self.o
        views, labels = [], None
        start = time.perf_counter()
        backbone_seconds, images = 0.0, 0
        for view in range(k):
            # Each view has its own fixed seed, so a resumed run rebuilds the identical cache.
            loader = make_loader(
                self.train_set,
                o.batch_size,
                seed=epoch_seed(o.seed, 0, 1 + view),
                workers=o.n_workers,
            )
            feats, labels, phase = extract_features(
                self.train_engine, self.model, loader, f"cache view {view + 1}/{k}"
            )
            views.append(feats)
            backbone_seconds += phase.backbone_seconds
            images += phase.images
        test_loader = make_loader(self.test_set, o.batch_size, seed=0, workers=o.n_workers)
        test_feats, test_labels, _ = extract_features(
            self.eval_engine, self.model, test_loader, "cache test"
        )
        assert labels is not None
        self.cache = (torch.stack(views), labels, test_feats, test_labels)
        seconds = time.perf_counter() - start
        self.timings.update(
            cache_seconds=seconds,
            cache_train_images=images,
            cache_backbone_images_per_s=images / backbone_seconds if backbone_seconds else 0.0,
        )
        log(
            f"feature cache: {k} view(s) x {len(labels)} training images + {len(test_labels)} test "
            f"images in {seconds:.1f}s (backbone forward {images / max(backbone_seconds, 1e-9):.0f} img/s)"
        )

    def run_epoch(self, epoch: int) -> tuple[Phase, Predictions]:
        o, desc = self.o, f"epoch {epoch}/{self.o.epochs}"
        seed = epoch_seed(o.seed, epoch)
        if self.cache is not None:
            feats, labels, test_feats, test_labels = self.cache
            train = train_cached_epoch(
                self.train_engine,
                self.model.head,
                feats,
                labels,
                self.optim,
                batch_size=o.batch_size,
                seed=seed,
                sample_weights=self.sample_weights,
                desc=desc,
            )
            test = evaluate_cached(
                self.eval_engine, self.model.head, test_feats, test_labels, o.batch_size
            )
            return train, test
        loader = make_loader(
            self.train_set,
            o.batch_size,
            seed=seed,
            workers=o.n_workers,
            shuffle=True,
            sample_weights=self.sample_weights,
            drop_last=self.drop_last,
        )
        train = train_epoch(
            self.train_engine, self.model, loader, self.optim, frozen=self.frozen, desc=desc
        )
        test_loader = make_loader(self.test_set, o.batch_size, seed=0, workers=o.n_workers)
        return train, evaluate(self.eval_engine, self.model, test_loader, f"test {epoch}")

    def epoch_metrics(
        self, epoch: int, train: Phase, test: Predictions, seconds: float
    ) -> dict[str, Any]:
        cm = confusion_matrix(test.targets, test.probabilities.argmax(1), len(self.manifest.labels))
        table = per_class(cm, self.manifest.labels)
        return {
            "epoch": epoch,
            "train_loss": train.loss,
            "train_accuracy": train.accuracy,
            "test_loss": test.phase.loss,
            "test_accuracy": test.phase.accuracy,
            "test_macro_f1": macro_f1(table),
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "train_seconds": train.seconds,
            "train_images_per_s": train.images_per_s,
            # Frozen backbone, images (not cache): the backbone's share of the training pass.
            "train_backbone_images_per_s": train.backbone_images_per_s,
            # The test pass: backbone forward only, no autograd (0 when test features are cached).
            "backbone_images_per_s": test.phase.backbone_images_per_s,
            "cached": self.cache is not None,
            "per_class": table,
        }

    def save(self, metrics: dict[str, Any], improved: bool) -> None:
        payload = self.payload(metrics)
        # best.pt first: if we die between the two writes, last.pt (the resume point) is the older
        # epoch, which the resumed run recomputes identically and saves again.
        if improved:
            save_checkpoint(self.run_dir / BEST, payload)
        save_checkpoint(self.run_dir / LAST, payload)

    def fit(self) -> int:
        """Epochs from ``self.epoch + 1``; returns an exit status (0 done or stopped, 130 Ctrl-C)."""
        o = self.o
        try:
            if o.cache_features and self.epoch < o.epochs:
                self.build_cache()
            for epoch in range(self.epoch + 1, o.epochs + 1):
                start = time.perf_counter()
                train, test = self.run_epoch(epoch)
                metrics = self.epoch_metrics(epoch, train, test, time.perf_counter() - start)
                self.epoch = epoch
                self.history.append(metrics)
                improved = metrics["test_accuracy"] > self.best_metric
                if improved:
                    self.best_metric, self.best_epoch = metrics["test_accuracy"], epoch
                    self.best_probabilities = test.probabilities
                self.save(metrics, improved)
                reports.write_history(self.run_dir, self.history)
                log(summary_line(metrics, o.epochs, improved))
                if o.stop_after is not None and epoch >= o.stop_after and epoch < o.epochs:
                    log(
                        f"stopped after epoch {epoch} as asked (--stop-after); continue with: "
                        f"python -m trainer.fit --resume {self.run_dir}"
                    )
                    return 0
        except KeyboardInterrupt:
            kept = (
                f"kept the checkpoint of epoch {self.epoch} in {self.run_dir / LAST}; continue with: "
                f"python -m trainer.fit --resume {self.run_dir}"
                if self.epoch
                else f"no epoch had finished, nothing to resume; the run folder is {self.run_dir}"
            )
            log(f"\ninterrupted: {kept}")
            return EXIT_INTERRUPTED
        return 0


def summary_line(m: dict[str, Any], epochs: int, improved: bool) -> str:
    return (
        f"epoch {m['epoch']:>3}/{epochs}  train loss {m['train_loss']:.4f} acc {m['train_accuracy']:.3f}"
        f"  test loss {m['test_loss']:.4f} acc {m['test_accuracy']:.3f}  lr {m['lr']:.2e}"
        f"  {m['seconds']:.1f}s ({m['train_images_per_s']:.0f} img/s)"
        + ("  *best" if improved else "")
    )


def build(options: Options, n_labels: int, weights: str) -> Classifier:
    # The head's initial weights come from --seed, so a run is reproducible end to end.
    torch.manual_seed(options.seed)
    return build_model(options.arch, n_labels, weights, options.dropout)


def describe_model(trainer: Trainer) -> str:
    o = trainer.o
    blocks = len(trainer.model.blocks)
    if trainer.frozen:
        trainable = "backbone frozen, only the head trains"
    else:
        n = blocks if o.unfreeze_last < 0 else min(o.unfreeze_last, blocks)
        trainable = f"last {n} of {blocks} backbone blocks fine-tuned (lr x{o.backbone_lr_scale:g})"
    return (
        f"{o.arch} ({trainer.info.weights_used} weights), {trainable}; input {o.resize}->{o.crop}; "
        f"{o.optimizer} lr {o.learning_rate:g}, {o.scheduler}; device {trainer.device}"
        + (f"; feature cache K={o.cache_features}" if o.cache_features else "")
    )


def start(
    options: Options, weights_used: str | None = None, model: Classifier | None = None
) -> Trainer:
    """A new run: model, clean split, run folder with split/options/stats written."""
    validate(options)
    root = Path(options.data or "").expanduser()
    # A cheap listing first: the model (and its weights) must be available before the long scan.
    labels, _, _ = discover(root)
    if model is None:
        model = build(options, len(labels), options.weights)
    run_dir = new_run_dir(options)
    log(f"scanning {root} ...")
    prepared = prepare_split(
        root, seed=options.seed, test_fraction=options.test_fraction, progress=options.progress
    )
    manifest = prepared.manifest
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.save(run_dir)
    write_skipped(run_dir / reports.SKIPPED, prepared.skipped)
    reports.write_json(run_dir / reports.OPTIONS, options.to_dict())
    counts = class_counts(manifest)
    info = RunInfo(
        run_dir=run_dir,
        run_id=run_dir.name,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        git_commit=git_commit(),
        weights_used=weights_used or options.weights,
        class_counts=counts,
    )
    layout = (
        "pre-split train/ and test/"
        if manifest.presplit
        else (
            f"split {1 - options.test_fraction:.0%}/{options.test_fraction:.0%} with seed {options.seed}"
        )
    )
    log(f"run folder {run_dir}; {len(manifest.items)} images, {layout}")
    if prepared.skipped:
        log(f"skipped {len(prepared.skipped)} file(s) (undecodable or leaked into test): "
            f"see {run_dir / reports.SKIPPED}")  # fmt: skip
    log(reports.class_table(counts))
    warning = reports.imbalance_warning(counts["train"], options.balance)
    if warning:
        log(warning)
    class_counts_png(run_dir / reports.CLASS_COUNTS, counts)
    trainer = Trainer(options, manifest, model, info)
    if trainer.frozen and options.weights == "none":
        log("warning: --weights none with a frozen backbone trains a head on random features; "
            "add --unfreeze-last all")  # fmt: skip
    trainer.samples_png()
    log(describe_model(trainer))
    return trainer


def resume(options: Options, given: set[str]) -> Trainer:
    """Rebuild a run from its ``last.pt`` with the saved options (only run-time ones may change)."""
    run_dir = Path(options.resume or "")
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such run folder")
    changed = sorted(given - RESUMABLE)
    if changed:
        names = ", ".join("--" + n.replace("_", "-") for n in changed)
        raise UsageError(
            f"{names} cannot change when resuming (the run keeps its saved options.json); "
            "start a new run to train differently"
        )
    payload = load_checkpoint(run_dir / LAST)
    saved = Options.from_dict(payload["options"])
    overrides = {name: getattr(options, name) for name in given & RESUMABLE if name != "resume"}
    # A --stop-after of the interrupted invocation must not stop the resumed one again.
    overrides.setdefault("stop_after", None)
    resumed = Options.from_dict({**saved.to_dict(), **overrides, "resume": str(run_dir)})
    try:
        manifest = Manifest.load(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{run_dir}: split.json is missing or unreadable ({exc})") from None
    if manifest.sha256() != payload.get("split_manifest_sha256"):
        raise CheckpointError(
            f"{run_dir}: split.json does not match the checkpoint; the run is inconsistent"
        )
    missing = [
        str(p) for p, _ in manifest.split("train") + manifest.split("test") if not p.is_file()
    ]
    if missing:
        raise UsageError(
            f"{len(missing)} image(s) of this run are gone, e.g. {missing[0]}; restore them to resume"
        )
    # The weights come from the checkpoint, so nothing is downloaded on resume.
    model = build(resumed, len(manifest.labels), "none")
    info = RunInfo(
        run_dir=run_dir,
        run_id=str(payload["run_id"]),
        created=str(payload["created"]),
        git_commit=str(payload["git_commit"]),
        weights_used=str(payload.get("weights_used") or saved.weights),
        class_counts=payload["class_counts"],
    )
    trainer = Trainer(resumed, manifest, model, info)
    trainer.restore(payload)
    log(
        f"resuming {run_dir} after epoch {trainer.epoch} of {resumed.epochs}; {describe_model(trainer)}"
    )
    return trainer


def finish(trainer: Trainer) -> dict[str, Any]:
    """Reports for the best model; returns its metrics."""
    o, run_dir = trainer.o, trainer.run_dir
    best = load_checkpoint(run_dir / BEST)
    probabilities = best.get("test_probabilities")
    labels = trainer.manifest.labels
    table = reports.final_reports(
        run_dir, trainer.test_items, np.asarray(probabilities), labels, o.max_misclassified
    )
    reports.write_history(run_dir, trainer.history)
    metrics = best["metrics"]
    log(f"best test accuracy {metrics['test_accuracy']:.3f} at epoch {best['epoch']}; per class:")
    log(reports.per_class_table(table))
    facts = {
        "run_id": trainer.info.run_id,
        "data": trainer.manifest.root,
        "layout": "pre-split"
        if trainer.manifest.presplit
        else f"split with seed {trainer.manifest.seed}, test fraction {trainer.manifest.test_fraction}",
        "labels": list(labels),
        "arch": o.arch,
        "weights_used": trainer.info.weights_used,
        "trainable": describe_model(trainer).split("; ")[0].split(", ", 1)[-1],
        "spec": trainer.spec.to_dict(),
        "augment": o.augment.describe(),
        "optimizer": f"{o.optimizer} lr {o.learning_rate:g}, {o.scheduler} schedule, "
        f"batch {o.batch_size}, label smoothing {o.label_smoothing:g}, balance {o.balance}",
        "epochs_done": trainer.epoch,
        "epochs": o.epochs,
        "device": str(trainer.device),
        "git_commit": trainer.info.git_commit,
        "created": trainer.info.created,
        "best": {**metrics, "epoch": best["epoch"]},
        "per_class": table,
        "class_counts": trainer.info.class_counts,
        "skipped": max(
            0, len((run_dir / reports.SKIPPED).read_text(encoding="utf-8").splitlines()) - 1
        ),
    }
    reports.atomic_write_text(run_dir / reports.REPORT, reports.report_markdown(facts))
    if trainer.timings:
        reports.write_json(run_dir / "timing.json", trainer.timings)
    log(f"reports: {run_dir / reports.REPORT}")
    return {**metrics, "epoch": best["epoch"]}


def export(run_dir: Path, *, publish: bool, debug: bool) -> Any:
    """Run the exporter; an export failure is one line (the trained run stays usable)."""
    from trainer.export import export_run  # lazy: onnx tooling only when exporting

    try:
        return export_run(run_dir, publish=publish)
    except Exception as exc:  # any export failure: say so, keep the trained run
        if debug:
            raise
        print(
            f"error: export failed: {one_line(str(exc))}; the trained run is in {run_dir}; "
            f"retry with: python -m trainer.export {run_dir}",
            file=sys.stderr,
        )
        return None


def train(trainer: Trainer) -> Outcome:
    status = trainer.fit()
    completed = status == 0 and trainer.epoch >= trainer.o.epochs
    if not completed:
        return Outcome(trainer.run_dir, status, False)
    return Outcome(trainer.run_dir, 0, True, finish(trainer))


def main(argv: Sequence[str]) -> int:
    given = given_options(argv)
    options = parse(argv)
    if options.demo:
        from trainer.demo import run_demo  # lazy: only the demo needs it

        return run_demo(options, given)
    if options.resume:
        trainer = resume(options, given)
    elif options.data:
        trainer = start(options)
    else:
        raise UsageError(
            "pass DATA (a folder with one sub-folder per class), --demo, or --resume RUN_DIR"
        )
    outcome = train(trainer)
    if not outcome.completed:
        return outcome.status
    if trainer.o.no_export:
        return 0
    result = export(outcome.run_dir, publish=trainer.o.publish, debug=trainer.o.debug)
    return 0 if result is not None else 1


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.fit", usage_errors=(DecodeError, LabelError, SpecError)))
