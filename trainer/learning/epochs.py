"""Training in epochs, the regime for fine-tuning (``--unfreeze-last``), an MLP head
(``--head mlp``) or no cached views (``--views 0``): epochs of SGD or AdamW over augmented images.

Every epoch ends with an atomic ``last.pt`` (the resume point) and, when val improved, ``best.pt``
(what is exported). "Improved" means the selection metric on val (``--select``, balanced accuracy
by default) went up, ties going to the lower val loss. Randomness is reseeded from
``(seed, epoch)`` every epoch, so a resumed run is the run an uninterrupted one would have been.
"""

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.cli import EXIT_INTERRUPTED
from trainer.data.images import ImageDataset, eval_transform, train_transform
from trainer.learning.checkpoint import BEST, LAST, Checkpoint, load_checkpoint, save_checkpoint
from trainer.learning.config import TrainConfig
from trainer.learning.engine import (
    Optim,
    Phase,
    epoch_seed,
    image_logits,
    make_loader,
    train_image_epoch,
)
from trainer.learning.run import Run, val_scores, write_history


class Epochs(Run):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c, model, spec = self.config, self.model, self.config.spec
        self.train_set = ImageDataset(
            self.train_items, train_transform(spec, c.augment), spec.resize
        )
        self.val_set = ImageDataset(
            self.val_items + self.val_negatives, eval_transform(spec), spec.resize
        )
        self.val_targets = np.array([y for _, y in self.val_items], dtype=np.int64)
        self.sample_weights = (
            torch.tensor([1.0 / self.counts[y] for _, y in self.train_items], dtype=torch.double)
            if self.balance == "sampler"
            else None
        )
        # With a sampler the batches are balanced already: the loss stays plain.
        weighted = self.balance not in ("none", "sampler")
        self.criterion = nn.CrossEntropyLoss(
            weight=self.class_weight.to(self.device) if weighted else None,
            label_smoothing=c.label_smoothing,
        )
        blocks = self.trainable_blocks
        if c.weights == "none":
            fast_batchnorm(blocks)
        groups = [{"params": list(model.head.parameters()), "lr": c.learning_rate}]
        backbone = [p for block in blocks for p in block.parameters()]
        if backbone:
            groups.append({"params": backbone, "lr": c.learning_rate * c.backbone_lr_scale})
        for group in groups:
            group["weight_decay"] = c.weight_decay
        if c.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                groups, lr=c.learning_rate, momentum=c.momentum, nesterov=True
            )
        else:
            optimizer = torch.optim.AdamW(groups, lr=c.learning_rate)
        n_train = len(self.train_set)
        self.drop_last = bool(blocks) and n_train > c.batch_size
        steps = n_train // c.batch_size if self.drop_last else -(-n_train // c.batch_size)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda")
        self.optim = Optim(optimizer, self._scheduler(optimizer, steps * c.epochs), scaler)
        self.epoch = self.saved_epoch = 0
        self.score: tuple[float, float] = (-1.0, 0.0)  # the best epoch's (selection, -val loss)
        self.best_epoch = 0

    def _scheduler(
        self, optimizer: torch.optim.Optimizer, total_steps: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        # Both schedules step per batch, so they follow the same curve however long an epoch is.
        if self.config.scheduler == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=[g["lr"] for g in optimizer.param_groups],
                total_steps=max(1, total_steps),
            )
        if self.config.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
        return None

    def state(self, **fields: Any) -> Checkpoint:
        o = self.optim
        return self.checkpoint(
            epoch=self.epoch,
            optimizer_state=o.optimizer.state_dict(),
            scheduler_state=o.scheduler.state_dict() if o.scheduler else None,
            scaler_state=o.scaler.state_dict(),
            best_epoch=self.best_epoch,
            best_score=self.score[0],
            **fields,
        )

    def restore(self, ckpt: Checkpoint) -> None:
        o = self.optim
        if ckpt.optimizer_state:
            o.optimizer.load_state_dict(ckpt.optimizer_state)
        if o.scheduler is not None and ckpt.scheduler_state:
            o.scheduler.load_state_dict(ckpt.scheduler_state)
        if ckpt.scaler_state:
            o.scaler.load_state_dict(ckpt.scaler_state)
        self.epoch = self.saved_epoch = ckpt.epoch
        self.best_epoch = ckpt.best_epoch
        best_row = next((h for h in ckpt.history if h["epoch"] == ckpt.best_epoch), None)
        self.score = (ckpt.best_score, -best_row["val_loss"]) if best_row else (-1.0, 0.0)
        super().restore(ckpt)  # the random state last, as the epoch after it will find it
        self.done = self.epoch >= self.config.epochs

    def where(self) -> str:
        return f"after epoch {self.epoch} of {self.config.epochs}"

    def run_epoch(self, epoch: int) -> tuple[Phase, torch.Tensor]:
        """Train one epoch over images; return its training totals and the val logits."""
        c, workers = self.config, self.flags.n_workers
        loader = make_loader(
            self.train_set, c.batch_size, seed=epoch_seed(c.seed, epoch), workers=workers,
            shuffle=True, sample_weights=self.sample_weights, drop_last=self.drop_last,
        )  # fmt: skip
        phase = train_image_epoch(
            self.engine, self.model, loader, self.criterion, self.optim,
            frozen=not self.trainable_blocks, desc=f"epoch {epoch}/{c.epochs}",
        )  # fmt: skip
        val_loader = make_loader(self.val_set, c.batch_size, seed=0, workers=workers)
        return phase, image_logits(self.engine, self.model, val_loader, f"val {epoch}")

    def fit(self) -> int:
        c, stop = self.config, self.flags.stop_after
        try:
            for epoch in range(self.epoch + 1, c.epochs + 1):
                self._epoch(epoch)
                if stop is not None and stop <= epoch < c.epochs:
                    self.log(
                        f"stopped after epoch {epoch} as asked (--stop-after); continue with: "
                        f"python -m trainer.fit --resume {self.run_dir}"
                    )
                    return 0
        except KeyboardInterrupt:
            self._interrupted()
            return EXIT_INTERRUPTED
        self.done = self.epoch >= c.epochs
        if self.done and self.best is None:  # the best epoch came before a resume
            self.best = load_checkpoint(self.run_dir / BEST)
        return 0

    def _epoch(self, epoch: int) -> None:
        c, k, n = self.config, len(self.labels), len(self.val_items)
        start = time.perf_counter()
        phase, logits = self.run_epoch(epoch)
        # Chosen on the classes alone: how well they are told apart, negatives aside.
        scores = val_scores(logits[:n, :k].numpy(), self.val_targets, k)
        self.epoch = epoch
        improved = (scores[c.select], -scores["loss"]) > self.score
        row = {
            "epoch": epoch,
            "train_loss": phase.loss,
            "train_accuracy": phase.accuracy,
            **{f"val_{name}": v for name, v in scores.items()},
            "lr": self.optim.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
            "train_images_per_s": phase.images_per_s,
        }
        self.history.append(row)
        if improved:
            self.score, self.best_epoch = (scores[c.select], -scores["loss"]), epoch
            # best.pt first: if we die between the two writes, last.pt (the resume point) is the
            # older epoch, which the resumed run recomputes and saves again.
            values = logits.numpy()
            self.best = self.state(
                weight_decay=c.weight_decay,
                val_metrics=scores,
                val_logits=values[:n],
                val_negative_logits=values[n:],
                val_targets=self.val_targets,
            )
            save_checkpoint(self.run_dir / BEST, self.best)
        save_checkpoint(self.run_dir / LAST, self.state())
        self.saved_epoch = epoch
        write_history(self.run_dir, self.history)
        self.log(summary_line(row, c, improved))

    def _interrupted(self) -> None:
        kept = (
            f"kept the checkpoint of epoch {self.saved_epoch} in {self.run_dir / LAST}; continue "
            f"with: python -m trainer.fit --resume {self.run_dir}"
            if self.saved_epoch
            else f"no epoch had finished, nothing to resume; the run folder is {self.run_dir}"
        )
        # Only the epochs last.pt holds: the one interrupted mid-save is recomputed on resume.
        self.history = [h for h in self.history if h["epoch"] <= self.saved_epoch]
        if self.history:
            write_history(self.run_dir, self.history)
        self.log(f"\ninterrupted: {kept}")


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
