"""One run's training: what ``trainer.fit`` drives. The test split is never looked at here.

Two regimes. The default (frozen backbone, cached views, linear head) solves the head outright
(``trainer.linear_head``): features of every train and val image are computed once, the L2
strength and the temperature are chosen by cross-validation over them, the head is refitted on
all of them, and ``best.pt``/``last.pt`` are written at the end (seconds of work after the cache).

Otherwise (``--unfreeze-last``, ``--head mlp`` or ``--views 0``) it trains in epochs over images:
every epoch ends with an atomic ``last.pt`` (the resume point) and, when val improved, ``best.pt``
(what is exported). "Improved" means the selection metric on val (balanced accuracy by default)
went up, ties going to the lower val loss; the temperature is then fitted on val at export.
"""

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer import linear_head, reports
from trainer.atomic import atomic_path
from trainer.augment import eval_transform, train_transform
from trainer.checkpoint import BEST, LAST, Checkpoint, RunInfo, save_checkpoint
from trainer.config import RunFlags, TrainConfig
from trainer.images import ImageDataset
from trainer.loop import (
    Engine,
    Optim,
    epoch_seed,
    extract_features,
    image_logits,
    make_loader,
    train_image_epoch,
)
from trainer.manifest import Manifest
from trainer.metrics import confusion_matrix
from trainer.model import Classifier

EXIT_INTERRUPTED = 130
FEATURES = "features"  # the solved head's per-view feature cache, its resume point
IMBALANCE_RATIO = 1.5  # largest/smallest training class at which --balance auto balances


def resolve_device(name: str) -> torch.device:
    from shared.cli import UsageError

    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpu_threads(requested: int, log: Callable[[str], None]) -> int:
    """``--threads``, or one per core unless the machine is already busy.

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


def balance_mode(config: TrainConfig, counts: dict[str, int]) -> str:
    """``--balance``, with auto resolved: a weighted loss when classes differ by 1.5x or more."""
    if config.balance != "auto":
        return config.balance
    smallest, largest = min(counts.values()), max(counts.values())
    return "loss" if largest >= IMBALANCE_RATIO * smallest else "none"


def val_scores(logits: np.ndarray, targets: np.ndarray, n_classes: int) -> dict[str, float]:
    """Point estimates the selection compares: loss, accuracy, balanced accuracy, macro-F1.

    Classes with no val image are left out of the class averages rather than counted as zero.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.int64)
    loss = float(nn.functional.cross_entropy(z, y)) if len(y) else 0.0
    cm = confusion_matrix(targets, logits.argmax(1), n_classes)
    support, predicted, hits = cm.sum(1), cm.sum(0), np.diag(cm)
    present = support > 0
    recall = np.divide(hits, support, out=np.zeros(n_classes), where=present)
    precision = np.divide(hits, predicted, out=np.zeros(n_classes), where=predicted > 0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros(n_classes),
        where=(precision + recall) > 0,
    )
    return {
        "loss": loss,
        "accuracy": float(hits.sum() / max(len(y), 1)),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
    }


class Training:
    """Model, optimizer and data of one run, from a fresh start or from ``last.pt``."""

    def __init__(
        self,
        config: TrainConfig,
        flags: RunFlags,
        manifest: Manifest,
        model: Classifier,
        info: RunInfo,
        run_dir: Path,
        log: Callable[[str], None] = print,
    ):
        self.config, self.flags, self.manifest, self.model = config, flags, manifest, model
        self.info, self.run_dir, self.log = info, run_dir, log
        self.labels = manifest.labels
        self.device = resolve_device(flags.device)
        torch.set_num_threads(cpu_threads(flags.threads, log))
        self.engine = Engine(self.device, flags.progress)
        spec = config.spec
        # Photos of none of the classes train an extra background output, index len(labels).
        k = len(self.labels)
        negatives = [(path, k) for path in manifest.negative_split("train")]
        self.background = bool(manifest.negatives)
        self.train_items = manifest.split("train") + negatives
        self.val_items = manifest.split("val")
        self.val_negatives = [(path, k) for path in manifest.negative_split("val")]
        self.train_set = ImageDataset(
            self.train_items, train_transform(spec, config.augment), spec.resize
        )
        self.val_set = ImageDataset(
            self.val_items + self.val_negatives, eval_transform(spec), spec.resize
        )
        self.val_targets = np.array([y for _, y in self.val_items], dtype=np.int64)
        self.groups = {Path(manifest.root) / it.path: it.group for it in manifest.items}
        self.groups |= {
            Path(manifest.negatives_root) / it.path: it.group for it in manifest.negatives
        }
        counts = manifest.counts()["train"]
        self.balance = balance_mode(config, counts)
        weights = np.array([counts[label] for label in self.labels], dtype=np.float64)
        if self.background:
            weights = np.append(weights, max(len(negatives), 1))
        self.sample_weights = (
            torch.tensor([1.0 / weights[y] for _, y in self.train_items], dtype=torch.double)
            if self.balance == "sampler"
            else None
        )
        class_weight = (
            torch.tensor(weights.sum() / (len(weights) * weights), dtype=torch.float32)
            if self.balance != "none"
            else None
        )
        self.class_weight = class_weight if class_weight is not None else torch.ones(len(weights))
        if self.balance == "sampler":
            class_weight = None  # the sampler balances; the loss stays plain
        self.criterion = nn.CrossEntropyLoss(
            weight=None if class_weight is None else class_weight.to(self.device),
            label_smoothing=config.label_smoothing,
        )
        self.model.to(self.device)
        n_blocks = len(model.blocks)
        unfrozen = n_blocks if config.unfreeze_last < 0 else min(config.unfreeze_last, n_blocks)
        blocks = model.freeze_backbone(unfrozen)
        if config.weights == "none":
            fast_batchnorm(blocks)
        # The default: frozen backbone, cached views, and a linear head solved outright.
        self.convex = not blocks and config.views > 0 and config.head == "linear"
        lr, decay = config.learning_rate, config.weight_decay
        groups = [{"params": list(model.head.parameters()), "lr": lr, "weight_decay": decay}]
        backbone = [p for block in blocks for p in block.parameters()]
        if backbone:
            groups.append(
                {"params": backbone, "lr": lr * config.backbone_lr_scale, "weight_decay": decay}
            )
        self.optimizer = self._optimizer(groups)
        n_train = len(self.train_set)
        self.drop_last = bool(blocks) and n_train > config.batch_size
        steps = n_train // config.batch_size if self.drop_last else -(-n_train // config.batch_size)
        self.scheduler = self._scheduler(steps * config.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda")
        self.optim = Optim(self.optimizer, self.scheduler, self.scaler)
        self.epoch = self.saved_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, float] = (-1.0, 0.0)  # (selection metric, -val loss)
        self.best_epoch = 0
        self.done = False
        self.views_saved = 0
        self.timings: dict[str, float] = {}

    def _optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.learning_rate, momentum=c.momentum, nesterov=True)
        return torch.optim.AdamW(groups, lr=c.learning_rate)

    def _scheduler(self, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        # Both schedules step per batch, so they follow the same curve however long an epoch is.
        if self.config.scheduler == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=[g["lr"] for g in self.optimizer.param_groups],
                total_steps=max(1, total_steps),
            )
        if self.config.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(1, total_steps)
            )
        return None

    # -- state ---------------------------------------------------------------------------------

    def checkpoint(self, model_state: dict[str, torch.Tensor] | None = None) -> Checkpoint:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = model_state if model_state is not None else self._state()
        return Checkpoint(
            config=self.config,
            info=self.info,
            labels=self.labels,
            split_sha256=self.manifest.sha256(),
            class_counts=self.manifest.counts(),
            epoch=self.epoch,
            model_state=state,
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict() if self.scheduler else None,
            scaler_state=self.scaler.state_dict(),
            rng_state=rng,
            history=list(self.history),
            best_epoch=self.best_epoch,
            best_score=self.best[0],
        )

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def restore(self, ckpt: Checkpoint) -> None:
        self.model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        if self.scheduler is not None and ckpt.scheduler_state:
            self.scheduler.load_state_dict(ckpt.scheduler_state)
        if ckpt.scaler_state:
            self.scaler.load_state_dict(ckpt.scaler_state)
        self.epoch = self.saved_epoch = ckpt.epoch
        self.history = list(ckpt.history)
        self.best_epoch = ckpt.best_epoch
        if self.convex:
            # The solved head's last.pt holds the head once it is solved (its history is the
            # table per L2 strength); before that, the feature views saved so far.
            self.done = bool(self.history)
            return self._restore_rng(ckpt)
        best_row = next((h for h in self.history if h["epoch"] == ckpt.best_epoch), None)
        self.best = (ckpt.best_score, -best_row["val_loss"]) if best_row else (-1.0, 0.0)
        self._restore_rng(ckpt)

    def _restore_rng(self, ckpt: Checkpoint) -> None:
        if "torch" in ckpt.rng_state:
            torch.set_rng_state(ckpt.rng_state["torch"])
        if "numpy" in ckpt.rng_state:
            np.random.set_state(ckpt.rng_state["numpy"])

    # -- passes --------------------------------------------------------------------------------

    def features(self, items: list[tuple[Path, int]], views: int) -> torch.Tensor | None:
        """Backbone features ``(views, N, F)`` of ``items``: view 0 exactly as served, the
        others augmented, each view with its own fixed seed, so a view computed after
        ``--resume`` is the view an uninterrupted run computes. Each view is saved in
        ``RUN/features/`` as it completes (the solved head's resume point); ``None`` when
        ``--stop-after`` stops the run first."""
        c, f = self.config, self.flags
        served = ImageDataset(items, eval_transform(c.spec), c.spec.resize)
        augmented = ImageDataset(items, train_transform(c.spec, c.augment), c.spec.resize)
        key = hashlib.sha256("\n".join(str(p) for p, _ in items).encode()).hexdigest()
        out = []
        for view in range(views):
            path = self.run_dir / FEATURES / f"view-{view}.pt"
            cached = torch.load(path, weights_only=True) if path.is_file() else None
            if cached is not None and cached.get("items") == key:
                out.append(cached["features"])
                continue
            loader = make_loader(
                served if view == 0 else augmented, c.batch_size,
                seed=epoch_seed(c.seed, 0, 1 + view), workers=f.n_workers,
            )  # fmt: skip
            feats, _ = extract_features(
                self.engine, self.model, loader, f"features, view {view + 1}/{views}"
            )
            with atomic_path(path) as tmp:
                torch.save({"items": key, "features": feats}, tmp)
            out.append(feats)
            self.views_saved = view + 1
            if f.stop_after is not None and f.stop_after <= view + 1 < views:
                self.log(
                    f"stopped after feature view {view + 1} of {views} as asked (--stop-after); "
                    f"continue with: python -m trainer.fit --resume {self.run_dir}"
                )
                return None
        return torch.stack(out)

    def fit_linear(self) -> None:
        """The default regime: cache, cross-validate, refit, write ``best.pt`` and ``last.pt``."""
        c, k = self.config, len(self.labels)
        items = self.train_items + self.val_items + self.val_negatives
        if not (self.run_dir / LAST).is_file():  # the resume point until the head is solved
            save_checkpoint(self.run_dir / LAST, self.checkpoint())
        start = time.perf_counter()
        views = self.features(items, 1 + c.views)
        if views is None:
            return
        seconds = time.perf_counter() - start
        rate = views.shape[0] * views.shape[1] / max(seconds, 1e-9)
        self.timings.update(cache_seconds=seconds, cache_images_per_s=rate)
        self.log(
            f"feature cache: {views.shape[0]} view(s) x {len(items)} train + val images in "
            f"{seconds:.1f}s ({rate:.0f} img/s)"
        )
        labels = torch.tensor([y for _, y in items], dtype=torch.int64)
        groups = [self.groups[Path(p)] for p, _ in items]
        start = time.perf_counter()
        choice = linear_head.choose(views, labels, groups, self.class_weight, k, c.seed)
        head = linear_head.fit(views, labels, self.class_weight, choice.strength)
        self.timings["head_seconds"] = time.perf_counter() - start
        standardize, linear = self.model.head[0], self.model.head[-1]
        with torch.no_grad():
            standardize.mean.copy_(head.mean)
            standardize.std.copy_(head.std)
            linear.weight.copy_(head.weight)
            linear.bias.copy_(head.bias + torch.as_tensor(choice.bias_shift, dtype=torch.float32))
        self.history = choice.table
        for row in choice.table:
            self.log(
                f"L2 {row['strength']:g}: out-of-fold NLL {row['oof_nll']:.4f}, accuracy "
                f"{row['oof_accuracy']:.3f}, balanced accuracy {row['oof_balanced_accuracy']:.3f}"
                + ("  *chosen" if row["strength"] == choice.strength else "")
            )
        in_class = labels.numpy() < k
        oof = choice.oof_logits
        scores = val_scores(oof[in_class, :k], labels.numpy()[in_class], k)
        best = self.checkpoint(self._state())
        best.weight_decay, best.temperature, best.val_metrics = (
            choice.strength,
            choice.temperature,
            scores,
        )
        best.val_logits, best.val_targets = oof[in_class], labels.numpy()[in_class]
        best.val_negative_logits = oof[~in_class]
        save_checkpoint(self.run_dir / BEST, best)
        save_checkpoint(self.run_dir / LAST, best)
        reports.write_history(self.run_dir, self.history, c.select)
        shutil.rmtree(self.run_dir / FEATURES, ignore_errors=True)  # only ever a resume point
        self.done = True

    def run_epoch(self, epoch: int) -> tuple[Any, torch.Tensor]:
        """Train one epoch over images; return its training totals and the val logits."""
        c, f = self.config, self.flags
        loader = make_loader(
            self.train_set, c.batch_size, seed=epoch_seed(c.seed, epoch), workers=f.n_workers,
            shuffle=True, sample_weights=self.sample_weights, drop_last=self.drop_last,
        )  # fmt: skip
        frozen = not any(p.requires_grad for b in self.model.blocks for p in b.parameters())
        phase = train_image_epoch(
            self.engine, self.model, loader, self.criterion, self.optim, frozen=frozen,
            desc=f"epoch {epoch}/{c.epochs}",
        )  # fmt: skip
        val_loader = make_loader(self.val_set, c.batch_size, seed=0, workers=f.n_workers)
        return phase, image_logits(self.engine, self.model, val_loader, f"val {epoch}")

    def _save_best(self, logits: np.ndarray, scores: dict[str, float]) -> None:
        best = self.checkpoint(self._state())
        n = len(self.val_items)
        best.weight_decay, best.val_metrics = self.config.weight_decay, scores
        best.val_logits, best.val_negative_logits = logits[:n], logits[n:]
        best.val_targets = self.val_targets
        save_checkpoint(self.run_dir / BEST, best)

    def fit(self) -> int:
        """Train; returns an exit status (0 done or stopped, 130 Ctrl-C)."""
        c, f = self.config, self.flags
        try:
            if self.convex:
                if not self.done:
                    self.fit_linear()
                return 0
            for epoch in range(self.epoch + 1, c.epochs + 1):
                start = time.perf_counter()
                phase, logits = self.run_epoch(epoch)
                k, n = len(self.labels), len(self.val_items)
                # Chosen on the classes alone: how well they are told apart, negatives aside.
                scores = val_scores(logits[:n, :k].numpy(), self.val_targets, k)
                self.epoch = epoch
                improved = (scores[c.select], -scores["loss"]) > self.best
                row = {
                    "epoch": epoch,
                    "train_loss": phase.loss,
                    "train_accuracy": phase.accuracy,
                    **{f"val_{k}": v for k, v in scores.items()},
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - start,
                    "train_images_per_s": phase.images_per_s,
                }
                self.history.append(row)
                if improved:
                    self.best, self.best_epoch = (scores[c.select], -scores["loss"]), epoch
                    # best.pt first: if we die between the two writes, last.pt (the resume
                    # point) is the older epoch, which the resumed run recomputes and saves again.
                    self._save_best(logits.numpy(), scores)
                save_checkpoint(self.run_dir / LAST, self.checkpoint())
                self.saved_epoch = epoch
                # The table every epoch (cheap); the picture when the run ends or stops.
                reports.write_history(self.run_dir, self.history, c.select, curves=False)
                self.log(summary_line(row, c, improved))
                if f.stop_after is not None and f.stop_after <= epoch < c.epochs:
                    reports.write_history(self.run_dir, self.history, c.select)
                    self.log(
                        f"stopped after epoch {epoch} as asked (--stop-after); continue with: "
                        f"python -m trainer.fit --resume {self.run_dir}"
                    )
                    return 0
        except KeyboardInterrupt:
            if self.convex:
                self.log(
                    f"\ninterrupted: kept {self.views_saved} feature view(s) in "
                    f"{self.run_dir / FEATURES}; continue with: python -m trainer.fit --resume "
                    f"{self.run_dir}"
                )
                return EXIT_INTERRUPTED
            kept = (
                f"kept the checkpoint of epoch {self.saved_epoch} in {self.run_dir / LAST}; continue "
                f"with: python -m trainer.fit --resume {self.run_dir}"
                if self.saved_epoch
                else f"no epoch had finished, nothing to resume; the run folder is {self.run_dir}"
            )
            # Only the epochs last.pt holds: the one interrupted mid-save is recomputed on resume.
            saved = [h for h in self.history if h["epoch"] <= self.saved_epoch]
            if saved:
                reports.write_history(self.run_dir, saved, c.select)
            self.log(f"\ninterrupted: {kept}")
            return EXIT_INTERRUPTED
        self.done = self.epoch >= c.epochs
        return 0


def summary_line(row: dict[str, Any], config: TrainConfig, improved: bool) -> str:
    return (
        f"epoch {row['epoch']:>3}/{config.epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.3f}  val loss {row['val_loss']:.4f} "
        f"acc {row['val_accuracy']:.3f} bal {row['val_balanced_accuracy']:.3f}  "
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s" + ("  *best" if improved else "")
    )


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
