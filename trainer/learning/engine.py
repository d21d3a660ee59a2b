"""The training engine: epochs over images, feature extraction, and val logits.

Randomness is reseeded from ``(seed, epoch)`` at the start of every epoch (shuffling, augmentation,
dropout), so an epoch run after ``--resume`` is the same epoch an uninterrupted run would have run.
"""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from tqdm import tqdm

from trainer.common.progress import hidden
from trainer.model.classifier import Classifier

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Phase:
    """Totals of one training pass: mean loss, accuracy, images, wall seconds."""

    loss: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


@dataclass
class Engine:
    """What every pass needs besides the data."""

    device: torch.device
    progress: bool = True

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, enabled=self.amp)

    def bar(self, iterable: Iterable, total: int, desc: str) -> Iterator:
        return iter(
            tqdm(
                iterable,
                total=total,
                desc=desc,
                unit="batch",
                leave=False,
                disable=hidden(self.progress),
                dynamic_ncols=True,
            )
        )


@dataclass
class Optim:
    """The parameter-update side of training: optimizer, per-batch scheduler, AMP grad scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 101 + stream) % (2**63)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (augmentation, dropout) and return a generator for shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    workers: int,
    shuffle: bool = False,
    sample_weights: torch.Tensor | None = None,
    drop_last: bool = False,
) -> DataLoader:
    generator = seed_everything(seed)
    sampler = None
    if sample_weights is not None:
        sampler = WeightedRandomSampler(
            sample_weights, len(sample_weights), replacement=True, generator=generator
        )
        shuffle = False
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=False,
    )


def _fit(
    engine: Engine,
    batches: Batches,
    total: int,
    forward: Callable[[torch.Tensor], torch.Tensor],
    criterion: nn.Module,
    optim: Optim,
    desc: str,
) -> Phase:
    start = time.perf_counter()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = engine.bar(batches, total, desc)
    for inputs, targets in bar:
        inputs = inputs.to(engine.device, non_blocking=True)
        targets = targets.to(engine.device, non_blocking=True)
        with engine.autocast():
            logits = forward(inputs)
            loss = criterion(logits, targets)
        optim.step(loss)
        n = len(targets)
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == targets).sum())
        seen += n
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return Phase(loss_sum / max(seen, 1), correct / max(seen, 1), seen, time.perf_counter() - start)


def train_image_epoch(
    engine: Engine,
    model: Classifier,
    loader: DataLoader,
    criterion: nn.Module,
    optim: Optim,
    *,
    frozen: bool,
    desc: str,
) -> Phase:
    """One epoch over augmented images. A frozen backbone runs without autograd."""
    model.train()

    def forward(x: torch.Tensor) -> torch.Tensor:
        if frozen:
            with torch.no_grad():
                features = model.features(x)
            return model.head(features)
        return model(x)

    return _fit(engine, loader, len(loader), forward, criterion, optim, desc)


@torch.no_grad()
def extract_features(
    engine: Engine, model: Classifier, loader: DataLoader, desc: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features ``(N, F)`` and labels of every image in ``loader`` (in loader order)."""
    model.eval()
    feats, labels = [], []
    for inputs, y in engine.bar(loader, len(loader), desc):
        with engine.autocast():
            feats.append(model.features(inputs.to(engine.device)).float().cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def image_logits(engine: Engine, model: Classifier, loader: DataLoader, desc: str) -> torch.Tensor:
    """``(N, outputs)`` logits of the whole model on ``loader``'s images, in eval mode."""
    model.eval()
    out = []
    for inputs, _ in engine.bar(loader, len(loader), desc):
        with engine.autocast():
            out.append(model(inputs.to(engine.device)).float().cpu())
    return torch.cat(out)
