"""The training engine: epochs over images or over cached backbone features, and evaluation.

Randomness is reseeded from ``(seed, epoch)`` at the start of every epoch (shuffling, augmentation,
dropout), so an epoch run after ``--resume`` is the same epoch an uninterrupted run would have run.
"""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from tqdm import tqdm

from trainer.model import Classifier

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Phase:
    """Totals of one pass: mean loss, accuracy, images, wall seconds, seconds in the backbone."""

    loss: float
    accuracy: float
    images: int
    seconds: float
    backbone_seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def backbone_images_per_s(self) -> float:
        return self.images / self.backbone_seconds if self.backbone_seconds else 0.0


@dataclass
class Engine:
    """What every pass needs besides the data."""

    device: torch.device
    criterion: nn.Module
    progress: bool = True

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, enabled=self.amp)

    def bar(self, iterable: Iterable, total: int, desc: str) -> Iterator:
        # disable=None: bars on a terminal only, so logs and CI output stay readable.
        return iter(
            tqdm(
                iterable,
                total=total,
                desc=desc,
                unit="batch",
                leave=False,
                disable=None if self.progress else True,
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
    optim: Optim,
    desc: str,
    timer: list[float],
) -> Phase:
    start = time.perf_counter()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = engine.bar(batches, total, desc)
    for inputs, targets in bar:
        inputs = inputs.to(engine.device, non_blocking=True)
        targets = targets.to(engine.device, non_blocking=True)
        with engine.autocast():
            logits = forward(inputs)
            loss = engine.criterion(logits, targets)
        optim.step(loss)
        n = len(targets)
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == targets).sum())
        seen += n
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    seconds = time.perf_counter() - start
    return Phase(loss_sum / max(seen, 1), correct / max(seen, 1), seen, seconds, sum(timer))


def _timed(fn: Callable[[torch.Tensor], torch.Tensor], timer: list[float], device: torch.device):
    """Wrap ``fn`` so the seconds spent in it accumulate in ``timer``."""

    def run(x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = fn(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timer.append(time.perf_counter() - start)
        return out

    return run


def train_epoch(
    engine: Engine,
    model: Classifier,
    loader: DataLoader,
    optim: Optim,
    *,
    frozen: bool,
    desc: str,
) -> Phase:
    """One epoch over augmented images. A frozen backbone runs without autograd."""
    model.train()
    timer: list[float] = []
    if frozen:

        @torch.no_grad()
        def backbone(x: torch.Tensor) -> torch.Tensor:
            return model.features(x)

        timed = _timed(backbone, timer, engine.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            return model.head(timed(x))

    else:
        forward = model
    return _fit(engine, loader, len(loader), forward, optim, desc, timer)


def train_cached_epoch(
    engine: Engine,
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    optim: Optim,
    *,
    batch_size: int,
    seed: int,
    sample_weights: torch.Tensor | None,
    desc: str,
) -> Phase:
    """One epoch of the head over cached features ``(K, N, F)``: each image shows one random view."""
    head.train()
    generator = seed_everything(seed)
    views, n = features.shape[0], features.shape[1]
    if sample_weights is not None:
        order = torch.multinomial(sample_weights, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    view = torch.randint(views, (n,), generator=generator)
    batches = (
        (features[view[idx], idx], labels[idx])
        for idx in (order[i : i + batch_size] for i in range(0, n, batch_size))
    )
    total = (n + batch_size - 1) // batch_size
    return _fit(engine, batches, total, head, optim, desc, [])


@dataclass
class Predictions:
    phase: Phase
    probabilities: np.ndarray  # (N, C) softmax
    targets: np.ndarray  # (N,)


@torch.no_grad()
def _predict(
    engine: Engine, batches: Batches, total: int, forward: Callable, desc: str, timer: list[float]
) -> Predictions:
    start = time.perf_counter()
    loss_sum, probs, targets = 0.0, [], []
    for inputs, y in engine.bar(batches, total, desc):
        inputs, y = inputs.to(engine.device), y.to(engine.device)
        with engine.autocast():
            logits = forward(inputs)
            loss_sum += float(engine.criterion(logits, y)) * len(y)
        probs.append(torch.softmax(logits.float(), 1).cpu())
        targets.append(y.cpu())
    seconds = time.perf_counter() - start
    p = torch.cat(probs).numpy() if probs else np.zeros((0, 0), np.float32)
    t = torch.cat(targets).numpy() if targets else np.zeros(0, np.int64)
    n = len(t)
    accuracy = float((p.argmax(1) == t).mean()) if n else 0.0
    return Predictions(Phase(loss_sum / max(n, 1), accuracy, n, seconds, sum(timer)), p, t)


def evaluate(engine: Engine, model: Classifier, loader: DataLoader, desc: str) -> Predictions:
    """Predictions on ``loader``; the backbone's share of the time is measured separately."""
    model.eval()
    timer: list[float] = []
    timed = _timed(model.features, timer, engine.device)
    return _predict(engine, loader, len(loader), lambda x: model.head(timed(x)), desc, timer)


def evaluate_cached(
    engine: Engine, head: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> Predictions:
    head.eval()
    n = len(labels)
    batches = (
        (features[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, n, batch_size)
    )
    return _predict(engine, batches, (n + batch_size - 1) // batch_size, head, "test", [])


@torch.no_grad()
def extract_features(
    engine: Engine, model: Classifier, loader: DataLoader, desc: str
) -> tuple[torch.Tensor, torch.Tensor, Phase]:
    """Backbone features ``(N, F)`` and labels of every image in ``loader`` (in loader order)."""
    model.eval()
    start = time.perf_counter()
    timer: list[float] = []
    timed = _timed(model.features, timer, engine.device)
    feats, labels = [], []
    for inputs, y in engine.bar(loader, len(loader), desc):
        with engine.autocast():
            feats.append(timed(inputs.to(engine.device)).float())
        labels.append(y)
    features, targets = torch.cat(feats), torch.cat(labels)
    phase = Phase(0.0, 0.0, len(targets), time.perf_counter() - start, sum(timer))
    return features, targets, phase
