"""The solved head, the default regime: a frozen backbone's cached features, a linear head solved
on them (``trainer.learning.linear_solver``), and no epochs.

1. The feature cache: the frozen backbone's features of every train and val image, as served
   (view 0) and in ``--views`` augmented views, each view a pass over the images with its own
   fixed seed. The slow part, and the resume point: each finished view is saved in
   ``RUN/features/``, ``--stop-after K`` stops after K of them, and a view computed after
   ``--resume`` is the view an uninterrupted run computes.
2. The L2 strength and the temperature by cross-validation over train + val (out of fold), then
   the head refitted on all of them and copied into the classifier.
3. ``best.pt`` and ``last.pt`` (the same checkpoint), the table per strength as the history.
"""

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch

from shared.cli import EXIT_INTERRUPTED
from trainer.common.files import atomic_path
from trainer.data.images import ImageDataset, eval_transform, train_transform
from trainer.learning import linear_solver
from trainer.learning.checkpoint import BEST, LAST, Checkpoint, save_checkpoint
from trainer.learning.config import TrainConfig
from trainer.learning.engine import Engine, epoch_seed, extract_features, make_loader
from trainer.learning.run import Run, val_scores, write_history
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


class SolvedHead(Run):
    def restore(self, ckpt: Checkpoint) -> None:
        super().restore(ckpt)
        # last.pt holds the solved head once there is one (its history is the table per L2
        # strength); before that, only the views saved so far tell how far the run got.
        self.done = bool(self.history)
        self.best = ckpt if self.done else None

    def where(self) -> str:
        if self.done:
            return "head solved"
        return f"{cached_views(self.run_dir)} of {1 + self.config.views} feature views cached"

    def fit(self) -> int:
        if self.done:
            return 0
        try:
            self._solve()
        except KeyboardInterrupt:
            self.log(
                f"\ninterrupted: kept {cached_views(self.run_dir)} feature view(s) in "
                f"{self.run_dir / FEATURES}; continue with: python -m trainer.fit --resume "
                f"{self.run_dir}"
            )
            return EXIT_INTERRUPTED
        return 0

    def _stop(self, views_done: int) -> bool:
        stop = self.flags.stop_after
        if stop is None or views_done < stop:
            return False
        self.log(
            f"stopped after feature view {views_done} of {1 + self.config.views} as asked "
            f"(--stop-after); continue with: python -m trainer.fit --resume {self.run_dir}"
        )
        return True

    def _solve(self) -> None:
        c, k = self.config, len(self.labels)
        items = self.train_items + self.val_items + self.val_negatives
        if not (self.run_dir / LAST).is_file():  # the resume point until the head is solved
            save_checkpoint(self.run_dir / LAST, self.checkpoint())
        start = time.perf_counter()
        views = compute_views(
            self.engine, self.model, items, c, self.flags.n_workers, self.run_dir, self._stop
        )
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
        choice = linear_solver.choose(views, labels, groups, self.class_weight, k, c.seed)
        head = linear_solver.fit(views, labels, self.class_weight, choice.strength)
        self.timings["head_seconds"] = time.perf_counter() - start
        self._set_head(head, torch.as_tensor(choice.bias_shift, dtype=torch.float32))
        self.history = choice.table
        for row in choice.table:
            self.log(
                f"L2 {row['strength']:g}: out-of-fold NLL {row['oof_nll']:.4f}, accuracy "
                f"{row['oof_accuracy']:.3f}, balanced accuracy {row['oof_balanced_accuracy']:.3f}"
                + ("  *chosen" if row["strength"] == choice.strength else "")
            )
        in_class = labels.numpy() < k
        oof = choice.oof_logits
        best = self.checkpoint(
            weight_decay=choice.strength,
            temperature=choice.temperature,
            val_metrics=val_scores(oof[in_class, :k], labels.numpy()[in_class], k),
            val_logits=oof[in_class],
            val_targets=labels.numpy()[in_class],
            val_negative_logits=oof[~in_class],
        )
        save_checkpoint(self.run_dir / BEST, best)
        save_checkpoint(self.run_dir / LAST, best)
        write_history(self.run_dir, self.history)
        shutil.rmtree(self.run_dir / FEATURES, ignore_errors=True)  # only ever a resume point
        self.best, self.done = best, True

    def _set_head(self, head: linear_solver.LinearFit, bias_shift: torch.Tensor) -> None:
        """The solved weights into the classifier's head (standardisation, then the linear layer),
        the prior correction folded into its bias."""
        standardize, linear = self.model.head[0], self.model.head[-1]
        standardize.set(head.mean, head.std)
        with torch.no_grad():
            linear.weight.copy_(head.weight)
            linear.bias.copy_(head.bias + bias_shift)
