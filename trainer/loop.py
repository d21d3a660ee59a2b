"""The training engine: epochs over images or over cached backbone features, and val logits.

With a frozen backbone the expensive part (the backbone's forward pass) does not change from one
epoch to the next, so the features of K views of every training image (the first exactly as
served, the others augmented) are computed once and the head trains from that cache in
milliseconds per epoch. That also makes it cheap to train several heads side by side, one per
weight decay, and keep whichever val prefers: :class:`Heads` holds them, each in its own optimizer
parameter group, so one step updates each exactly as if it trained alone.

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

from trainer.model import Classifier
from trainer.progress import hidden

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


class Heads(nn.Module):
    """``G`` independent heads over the same features; ``forward`` returns ``(G, N, classes)``."""

    def __init__(self, make: Callable[[], nn.Module], count: int):
        super().__init__()
        self.heads = nn.ModuleList(make() for _ in range(count))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(features) for head in self.heads])


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


def multi_head_loss(
    logits: torch.Tensor, targets: torch.Tensor, criterion: nn.Module
) -> torch.Tensor:
    """The sum of each head's loss: its gradient for one head's weights is that head's own."""
    return sum((criterion(g, targets) for g in logits), torch.zeros((), device=logits.device))


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
            logits = forward(inputs)  # (G, B, C)
            loss = multi_head_loss(logits, targets, criterion)
        optim.step(loss)
        n, heads = len(targets), logits.shape[0]
        loss_sum += float(loss.detach()) / heads * n
        correct += int((logits.argmax(2) == targets).sum()) / heads
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
            return model.head(features)[None]
        return model(x)[None]

    return _fit(engine, loader, len(loader), forward, criterion, optim, desc)


def train_cached_epoch(
    engine: Engine,
    heads: Heads,
    features: torch.Tensor,
    labels: torch.Tensor,
    criterion: nn.Module,
    optim: Optim,
    *,
    batch_size: int,
    seed: int,
    sample_weights: torch.Tensor | None,
    desc: str,
) -> Phase:
    """One epoch of the heads over cached features ``(K, N, F)``: each image shows a random view."""
    heads.train()
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
    return _fit(engine, batches, total, heads, criterion, optim, desc)


@torch.no_grad()
def head_logits(heads: Heads, features: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``(G, N, classes)`` logits of every head on cached features, in eval mode."""
    heads.eval()
    return torch.cat(
        [heads(features[i : i + batch_size]) for i in range(0, len(features), batch_size)], dim=1
    ).float()


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
    """``(1, N, classes)`` logits of the whole model on ``loader``'s images, in eval mode."""
    model.eval()
    out = []
    for inputs, _ in engine.bar(loader, len(loader), desc):
        with engine.autocast():
            out.append(model(inputs.to(engine.device)).float().cpu())
    return torch.cat(out)[None]
