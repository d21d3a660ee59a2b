"""One run's training state and its epoch loop: what ``trainer.fit`` drives.

Every epoch ends with an atomic ``last.pt`` (the resume point) and, when val improved, ``best.pt``
(what is exported). "Improved" means the selection metric on val (balanced accuracy by default)
went up, ties going to the lower val loss; with several weight decays training side by side, the
best head of the best epoch wins. The test split is never looked at here.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer import reports
from trainer.augment import eval_transform, train_transform
from trainer.checkpoint import BEST, LAST, Checkpoint, RunInfo, save_checkpoint
from trainer.config import RunFlags, TrainConfig
from trainer.images import ImageDataset
from trainer.loop import (
    Engine,
    Heads,
    Optim,
    epoch_seed,
    extract_features,
    head_logits,
    image_logits,
    make_loader,
    train_cached_epoch,
    train_image_epoch,
)
from trainer.manifest import Manifest
from trainer.metrics import confusion_matrix
from trainer.model import Classifier, make_head

EXIT_INTERRUPTED = 130
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
            if self.balance == "loss"
            else None
        )
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
        self.cached = not blocks and config.views > 0
        self.decays = config.weight_decays
        lr = config.learning_rate
        if self.cached:
            # One head per weight decay, each its own parameter group (so its own decay).
            self.heads: Heads | None = Heads(self._new_head, len(self.decays)).to(self.device)
            groups = [
                {"params": list(h.parameters()), "lr": lr, "weight_decay": wd}
                for h, wd in zip(self.heads.heads, self.decays, strict=True)
            ]
        else:
            self.heads = None
            groups = [
                {"params": list(model.head.parameters()), "lr": lr, "weight_decay": self.decays[0]}
            ]
            backbone = [p for block in blocks for p in block.parameters()]
            if backbone:
                groups.append(
                    {
                        "params": backbone,
                        "lr": lr * config.backbone_lr_scale,
                        "weight_decay": self.decays[0],
                    }
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
        self.cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.timings: dict[str, float] = {}

    def _new_head(self) -> nn.Module:
        c = self.config
        outputs = len(self.labels) + self.background
        return make_head(self.model.pool_features, outputs, c.head, c.dropout)

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
        """The classifier's weights, plus every head's when several train side by side."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if self.heads is not None:
            state.update(
                {f"heads.{k}": v.detach().cpu() for k, v in self.heads.state_dict().items()}
            )
        return state

    def restore(self, ckpt: Checkpoint) -> None:
        state = dict(ckpt.model_state)
        heads = {k[len("heads.") :]: state.pop(k) for k in list(state) if k.startswith("heads.")}
        self.model.load_state_dict(state)
        if self.heads is not None:
            self.heads.load_state_dict(heads)
        if ckpt.optimizer_state:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        if self.scheduler is not None and ckpt.scheduler_state:
            self.scheduler.load_state_dict(ckpt.scheduler_state)
        if ckpt.scaler_state:
            self.scaler.load_state_dict(ckpt.scaler_state)
        self.epoch = self.saved_epoch = ckpt.epoch
        self.history = list(ckpt.history)
        self.best_epoch = ckpt.best_epoch
        best_row = next((h for h in self.history if h["epoch"] == ckpt.best_epoch), None)
        self.best = (ckpt.best_score, -best_row["val_loss"]) if best_row else (-1.0, 0.0)
        if "torch" in ckpt.rng_state:
            torch.set_rng_state(ckpt.rng_state["torch"])
        if "numpy" in ckpt.rng_state:
            np.random.set_state(ckpt.rng_state["numpy"])

    # -- passes --------------------------------------------------------------------------------

    def build_cache(self) -> None:
        """Backbone features of K views of every training image (view 0 exactly as served, the
        others augmented) and of every val image, computed once."""
        c, f = self.config, self.flags
        start = time.perf_counter()
        served = ImageDataset(self.train_items, eval_transform(c.spec), c.spec.resize)
        views, labels = [], None
        for view in range(c.views):
            dataset = served if view == 0 else self.train_set
            # Each view has its own fixed seed, so a resumed run rebuilds the identical cache.
            loader = make_loader(
                dataset, c.batch_size, seed=epoch_seed(c.seed, 0, 1 + view), workers=f.n_workers
            )
            feats, labels = extract_features(
                self.engine, self.model, loader, f"features, view {view + 1}/{c.views}"
            )
            views.append(feats)
        val_loader = make_loader(self.val_set, c.batch_size, seed=0, workers=f.n_workers)
        val_feats, _ = extract_features(self.engine, self.model, val_loader, "features, val")
        assert labels is not None
        self.cache = (torch.stack(views), labels, val_feats)
        for head in (self.model.head, *(self.heads.heads if self.heads else ())):
            head[0].fit(self.cache[0])
        seconds = time.perf_counter() - start
        images = c.views * len(labels) + len(val_feats)
        self.timings.update(cache_seconds=seconds, cache_images_per_s=images / max(seconds, 1e-9))
        self.log(
            f"feature cache: {c.views} view(s) x {len(labels)} training images + "
            f"{len(val_feats)} val images in {seconds:.1f}s ({images / max(seconds, 1e-9):.0f} img/s)"
        )

    def run_epoch(self, epoch: int) -> tuple[Any, torch.Tensor]:
        """Train one epoch; return its training totals and every head's val logits."""
        c, f = self.config, self.flags
        desc = f"epoch {epoch}/{c.epochs}"
        seed = epoch_seed(c.seed, epoch)
        if self.cache is not None and self.heads is not None:
            feats, labels, val_feats = self.cache
            phase = train_cached_epoch(
                self.engine, self.heads, feats.to(self.device), labels.to(self.device),
                self.criterion, self.optim, batch_size=c.batch_size, seed=seed,
                sample_weights=self.sample_weights, desc=desc,
            )  # fmt: skip
            return phase, head_logits(self.heads, val_feats.to(self.device)).cpu()
        loader = make_loader(
            self.train_set, c.batch_size, seed=seed, workers=f.n_workers, shuffle=True,
            sample_weights=self.sample_weights, drop_last=self.drop_last,
        )  # fmt: skip
        frozen = not any(p.requires_grad for b in self.model.blocks for p in b.parameters())
        phase = train_image_epoch(
            self.engine, self.model, loader, self.criterion, self.optim, frozen=frozen, desc=desc
        )
        val_loader = make_loader(self.val_set, c.batch_size, seed=0, workers=f.n_workers)
        return phase, image_logits(self.engine, self.model, val_loader, f"val {epoch}")

    def _best_head(self, logits: torch.Tensor) -> tuple[int, dict[str, float], list[dict]]:
        # Chosen on the classes alone: how well the head tells them apart, negatives aside.
        k, n = len(self.labels), len(self.val_items)
        rows = [val_scores(g[:n, :k].numpy(), self.val_targets, k) for g in logits]
        key = self.config.select
        index = max(range(len(rows)), key=lambda i: (rows[i][key], -rows[i]["loss"]))
        return index, rows[index], rows

    def _save_best(self, head: int, logits: np.ndarray, scores: dict[str, float]) -> None:
        if self.heads is not None:
            self.model.head.load_state_dict(self.heads.heads[head].state_dict())
        best = self.checkpoint({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
        n = len(self.val_items)
        best.weight_decay, best.val_metrics = self.decays[head], scores
        best.val_logits, best.val_negative_logits = logits[:n], logits[n:]
        save_checkpoint(self.run_dir / BEST, best)

    def fit(self) -> int:
        """Epochs from ``self.epoch + 1``; returns an exit status (0 done or stopped, 130 Ctrl-C)."""
        c, f = self.config, self.flags
        try:
            if self.cached and self.epoch < c.epochs:
                self.build_cache()
            for epoch in range(self.epoch + 1, c.epochs + 1):
                start = time.perf_counter()
                phase, logits = self.run_epoch(epoch)
                head, scores, every = self._best_head(logits)
                self.epoch = epoch
                improved = (scores[c.select], -scores["loss"]) > self.best
                row = {
                    "epoch": epoch,
                    "train_loss": phase.loss,
                    "train_accuracy": phase.accuracy,
                    **{f"val_{k}": v for k, v in scores.items()},
                    "weight_decay": self.decays[head],
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - start,
                    "train_images_per_s": phase.images_per_s,
                    "cached": self.cache is not None,
                    "by_weight_decay": {
                        str(wd): r for wd, r in zip(self.decays, every, strict=True)
                    },
                }
                self.history.append(row)
                if improved:
                    self.best, self.best_epoch = (scores[c.select], -scores["loss"]), epoch
                    # best.pt first: if we die between the two writes, last.pt (the resume
                    # point) is the older epoch, which the resumed run recomputes and saves again.
                    self._save_best(head, logits[head].numpy(), scores)
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
        return 0


def summary_line(row: dict[str, Any], config: TrainConfig, improved: bool) -> str:
    decay = f" (wd {row['weight_decay']:g})" if len(config.weight_decays) > 1 else ""
    return (
        f"epoch {row['epoch']:>3}/{config.epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.3f}  val loss {row['val_loss']:.4f} "
        f"acc {row['val_accuracy']:.3f} bal {row['val_balanced_accuracy']:.3f}{decay}  "
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
