"""The solved head's feature cache: the frozen backbone's features of every train and val image,
as served (view 0) and in augmented views, each view a pass over the images with its own fixed
seed. Each finished view is saved in ``RUN/features/``, so an interrupted run recomputes only the
views it lacks, and a view computed after ``--resume`` is the view an uninterrupted run computes.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from trainer.common.files import atomic_path
from trainer.data.augment import eval_transform, train_transform
from trainer.data.images import ImageDataset
from trainer.learning.config import TrainConfig
from trainer.learning.engine import Engine, epoch_seed, extract_features, make_loader
from trainer.model.classifier import Classifier

FEATURES = "features"  # the folder of cached views in a run folder: the solved head's resume point
Items = list[tuple[Path, int]]


def view_path(run_dir: Path, view: int) -> Path:
    return run_dir / FEATURES / f"view-{view}.pt"


def cached_views(run_dir: Path) -> int:
    """How many views an interrupted run has saved."""
    return len(list((run_dir / FEATURES).glob("view-*.pt")))


def compute_views(
    engine: Engine,
    model: Classifier,
    items: Items,
    config: TrainConfig,
    workers: int,
    run_dir: Path,
    stop: Callable[[int], bool] = lambda views_done: False,
) -> torch.Tensor | None:
    """Features ``(1 + config.views, N, F)`` of ``items``, from the cache where it has them;
    ``None`` when ``stop(views saved)`` asks to stop before the last view."""
    views = 1 + config.views
    served = ImageDataset(items, eval_transform(config.spec), config.spec.resize)
    augmented = ImageDataset(
        items, train_transform(config.spec, config.augment), config.spec.resize
    )
    # A cached view counts only for exactly these images in this order.
    key = hashlib.sha256("\n".join(str(p) for p, _ in items).encode()).hexdigest()
    out = []
    for view in range(views):
        path = view_path(run_dir, view)
        cached = torch.load(path, weights_only=True) if path.is_file() else None
        if cached is not None and cached.get("items") == key:
            out.append(cached["features"])
            continue
        loader = make_loader(
            served if view == 0 else augmented, config.batch_size,
            seed=epoch_seed(config.seed, 0, 1 + view), workers=workers,
        )  # fmt: skip
        feats, _ = extract_features(engine, model, loader, f"features, view {view + 1}/{views}")
        with atomic_path(path) as tmp:
            torch.save({"items": key, "features": feats}, tmp)
        out.append(feats)
        if view + 1 < views and stop(view + 1):
            return None
    return torch.stack(out)
