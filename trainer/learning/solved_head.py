"""The solved head, the default regime: a frozen backbone's cached features, a linear head solved
on them (``trainer.learning.recipe``), and no epochs.

1. The feature cache: the frozen backbone's features of every train and val image as served
   (view 0), of its mirror image when the model serves image and mirror averaged (``--mirror``),
   and in ``--views`` augmented views, each view a pass over the images with its own fixed seed.
   The slow part, and the resume point: each finished view is saved in ``RUN/features/``,
   ``--stop-after K`` stops after K of them, and a view computed after ``--resume`` is the view an
   uninterrupted run computes.
2. The recipe on every train and val photo: the head, its temperature and imbalance correction,
   and the "none of these" rule, all chosen out of fold. Without a test split, the recipe is
   also cross-validated whole: the run's estimate of how well the served model does.
3. The classifier takes the head and the rule; ``best.pt`` and ``last.pt`` (the same checkpoint).
"""

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from shared.cli import EXIT_INTERRUPTED
from trainer.common.files import atomic_path
from trainer.data.images import (
    ImageDataset,
    eval_transform,
    mirrored_eval_transform,
    train_transform,
)
from trainer.learning.checkpoint import BEST, LAST, Checkpoint, save_checkpoint
from trainer.learning.config import TrainConfig
from trainer.learning.engine import Engine, epoch_seed, extract_features, make_loader
from trainer.learning.recipe import Estimate, Recipe, Settings, cross_validate, fit_recipe
from trainer.learning.rejection_rule import per_class_rejected
from trainer.learning.run import Run, val_scores, write_history
from trainer.model.classifier import Classifier
from trainer.model.open_set import OTHER_CLASS

FEATURES = "features"  # the folder of cached views in a run folder: the solved head's resume point
Items = list[tuple[Path, int]]


def view_path(run_dir: Path, view: int) -> Path:
    return run_dir / FEATURES / f"view-{view}.pt"


def view_count(config: TrainConfig) -> int:
    return 1 + config.mirror + config.views


def cached_views(run_dir: Path) -> int:
    """How many views an interrupted run has saved."""
    return len(list((run_dir / FEATURES).glob("view-*.pt")))


class PhotoCache:
    """Served and mirror features of single photos, shared between runs (``--feature-cache``):
    deterministic views only (an augmented view depends on the run's seed and the photo's place
    in the folder). A file per photo and view, named by the photo's sha256 under a key of the
    backbone's weights and the preprocessing, so a changed backbone never reads stale features."""

    def __init__(self, root: Path, model: Classifier, config: TrainConfig):
        digest = hashlib.sha256(f"{config.arch}|{config.spec.to_json()}".encode())
        for name, tensor in sorted(model.blocks.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
        self.folder = Path(root) / digest.hexdigest()[:20]

    def path(self, sha256: str, view: int) -> Path:
        return self.folder / f"view-{view}" / sha256[:2] / f"{sha256}.pt"

    def load(self, shas: list[str], view: int) -> dict[int, torch.Tensor]:
        found = {}
        for i, sha in enumerate(shas):
            path = self.path(sha, view)
            if path.is_file():
                found[i] = torch.load(path, weights_only=True)
        return found

    def save(self, shas: list[str], view: int, features: torch.Tensor) -> None:
        for sha, row in zip(shas, features, strict=True):
            with atomic_path(self.path(sha, view)) as tmp:
                torch.save(row.clone(), tmp)


def _photo_view(
    engine: Engine, model: Classifier, dataset: ImageDataset, batch: int, workers: int,
    shas: list[str], view: int, cache: PhotoCache, desc: str,
) -> torch.Tensor:  # fmt: skip
    """A deterministic view, the photos the shared cache lacks computed and added to it."""
    found = cache.load(shas, view)
    missing = [i for i in range(len(shas)) if i not in found]
    if missing:
        subset = ImageDataset(
            [dataset.items[i] for i in missing], dataset.transform, dataset.min_short_side
        )
        loader = make_loader(subset, batch, seed=0, workers=workers)
        feats, _ = extract_features(engine, model, loader, desc)
        cache.save([shas[i] for i in missing], view, feats)
        found.update(zip(missing, feats, strict=True))
    return torch.stack([found[i] for i in range(len(shas))])


def compute_views(
    engine: Engine,
    model: Classifier,
    items: Items,
    config: TrainConfig,
    workers: int,
    run_dir: Path,
    stop: Callable[[int], bool] = lambda views_done: False,
    shared: tuple[PhotoCache, list[str]] | None = None,
) -> torch.Tensor | None:
    """Features ``(views, N, F)`` of ``items`` (:func:`view_count`: the served view, its mirror
    with ``--mirror``, then the augmented views), from the cache where it has them; ``None`` when
    ``stop(views saved)`` asks to stop before the last view."""
    views, spec = view_count(config), config.spec
    datasets = [ImageDataset(items, eval_transform(spec), spec.resize)]
    if config.mirror:
        datasets.append(ImageDataset(items, mirrored_eval_transform(spec), spec.resize))
    augmented = ImageDataset(items, train_transform(spec, config.augment), spec.resize)
    # A cached view counts only for exactly these images in this order.
    key = hashlib.sha256("\n".join(str(p) for p, _ in items).encode()).hexdigest()
    out = []
    for view in range(views):
        path = view_path(run_dir, view)
        cached = torch.load(path, weights_only=True) if path.is_file() else None
        if cached is not None and cached.get("items") == key:
            out.append(cached["features"])
            continue
        desc = f"features, view {view + 1}/{views}"
        if shared is not None and view < len(datasets):
            cache, shas = shared
            dataset = datasets[view]
            feats = _photo_view(
                engine, model, dataset, config.batch_size, workers, shas, view, cache, desc
            )
        else:
            loader = make_loader(
                datasets[view] if view < len(datasets) else augmented, config.batch_size,
                seed=epoch_seed(config.seed, 0, 1 + view), workers=workers,
            )  # fmt: skip
            feats, _ = extract_features(engine, model, loader, desc)
        with atomic_path(path) as tmp:
            torch.save({"items": key, "features": feats}, tmp)
        out.append(feats)
        if view + 1 < views and stop(view + 1):
            return None
    return torch.stack(out)


class SolvedHead(Run):
    def restore(self, ckpt: Checkpoint) -> None:
        super().restore(ckpt)
        # last.pt holds the solved head once there is one (its history, one row of out-of-fold
        # figures); before that, only the views saved so far tell how far the run got.
        self.done = bool(self.history)
        self.best = ckpt if self.done else None

    def where(self) -> str:
        if self.done:
            return "head solved"
        return f"{cached_views(self.run_dir)} of {view_count(self.config)} feature views cached"

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
            f"stopped after feature view {views_done} of {view_count(self.config)} as asked "
            f"(--stop-after); continue with: python -m trainer.fit --resume {self.run_dir}"
        )
        return True

    def _solve(self) -> None:
        c, k = self.config, len(self.labels)
        items = self.train_items + self.val_items + self.val_negatives
        if not (self.run_dir / LAST).is_file():  # the resume point until the head is solved
            save_checkpoint(self.run_dir / LAST, self.checkpoint())
        start = time.perf_counter()
        shared = None
        if self.flags.feature_cache:
            shas = {Path(self.manifest.root) / it.path: it.sha256 for it in self.manifest.items}
            shas |= {
                Path(self.manifest.negatives_root) / it.path: it.sha256
                for it in self.manifest.negatives
            }
            cache = PhotoCache(Path(self.flags.feature_cache), self.model, c)
            shared = cache, [shas[Path(p)] for p, _ in items]
        cache = compute_views(
            self.engine,
            self.model,
            items,
            c,
            self.flags.n_workers,
            self.run_dir,
            self._stop,
            shared,
        )
        if cache is None:
            return
        seconds = time.perf_counter() - start
        rate = cache.shape[0] * cache.shape[1] / max(seconds, 1e-9)
        self.timings.update(cache_seconds=seconds, cache_images_per_s=rate)
        self.log(
            f"feature cache: {cache.shape[0]} view(s) x {len(items)} train + val images in "
            f"{seconds:.1f}s ({rate:.0f} img/s)"
        )
        views = cache.numpy().astype(np.float64)
        served = (views[0] + views[1]) / 2 if c.mirror else views[0]
        rows = np.concatenate(
            [views[:1], views[1 + c.mirror :]]
        )  # the mirror is served, not learnt
        labels = np.array([y for _, y in items], dtype=np.int64)
        groups = np.array([self.groups[Path(p)] for p, _ in items], dtype=np.int64)
        settings = Settings(c.head_c, self.balance, c.accept_rate, c.seed)
        start = time.perf_counter()
        recipe = fit_recipe(rows, served, labels, groups, k, settings)
        self.timings["head_seconds"] = time.perf_counter() - start
        estimate = None
        if not self.manifest.split("test"):  # no test split: the recipe cross-validated whole
            start = time.perf_counter()
            estimate = cross_validate(rows, served, labels, groups, k, settings)
            self.timings["estimate_seconds"] = time.perf_counter() - start
        self._set_model(recipe)
        self.best = self._checkpoint(recipe, estimate, labels, items)
        self.history = self.best.history
        save_checkpoint(self.run_dir / BEST, self.best)
        save_checkpoint(self.run_dir / LAST, self.best)
        write_history(self.run_dir, self.history)
        shutil.rmtree(self.run_dir / FEATURES, ignore_errors=True)  # only ever a resume point
        self.done = True

    def _checkpoint(
        self, recipe: Recipe, estimate: Estimate | None, labels: np.ndarray, items: Items
    ) -> Checkpoint:
        """The run's best.pt: the model, and what its choices rest on (out of fold)."""
        k, inside = len(self.labels), labels < len(self.labels)
        oof, known = recipe.oof_logits, recipe.oof_known
        scores = val_scores(oof[inside], labels[inside], k)
        self.history = [
            {f"oof_{name}": value for name, value in scores.items()}
            | {"temperature": recipe.head.temperature, **self.timings}
        ]
        self.log(
            "out of fold: " + ", ".join(f"{n.replace('_', ' ')} {v:.3f}" for n, v in scores.items())
        )
        kinds = [it.label for it in self.manifest.negatives if it.split in ("train", "val")]
        return self.checkpoint(
            weight_decay=self.config.head_c,
            temperature=recipe.head.temperature,
            val_metrics=scores,
            val_logits=oof[inside],
            val_targets=labels[inside],
            rejection={
                "method": recipe.rule.method,
                "known_scores": known[inside].tolist(),
                "negative_known_scores": known[~inside].tolist(),
                "negative_kinds": kinds,
                "per_class_rejected": per_class_rejected(known[inside], labels[inside], self.labels),
            },
            estimate=None if estimate is None else {
                "folds": estimate.folds,
                "labels": estimate.labels.tolist(),
                "predicted": estimate.predicted.tolist(),
                "known": estimate.known.tolist(),
                "negative_kinds": kinds,
            },
        )  # fmt: skip

    def _set_model(self, recipe: Recipe) -> None:
        """The recipe into the classifier: standardisation and linear layer (the imbalance
        correction folded into its bias, the temperature applied at export), and the rule."""
        head, rule = recipe.head, recipe.rule
        standardize, linear = self.model.head[0], self.model.head[-1]
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        standardize.set(as_tensor(head.mean), as_tensor(head.std))
        shift = head.shift if head.shift is not None else np.zeros(len(head.bias))
        known = self.model.add_known_score(
            len(rule.references), len(self.labels), rule.background is not None
        )
        mask = np.where(
            rule.reference_labels[None, :] == np.arange(len(self.labels))[:, None], 0.0, OTHER_CLASS
        )
        with torch.no_grad():
            linear.weight.copy_(as_tensor(head.weight))
            linear.bias.copy_(as_tensor(head.bias + head.temperature * shift))
            known.references.copy_(as_tensor(rule.references))
            known.class_mask.copy_(as_tensor(mask))
            known.knn_threshold.copy_(as_tensor(rule.knn_threshold))
            known.knn_scale.fill_(rule.knn_scale)
            if rule.background is not None:
                bg = rule.background
                bg_shift = bg.shift if bg.shift is not None else np.zeros(len(bg.bias))
                known.bg_mean.copy_(as_tensor(bg.mean))
                known.bg_std.copy_(as_tensor(bg.std))
                known.bg.weight.copy_(as_tensor(bg.weight / bg.temperature))
                known.bg.bias.copy_(as_tensor(bg.bias / bg.temperature + bg_shift))
                known.bg_threshold.fill_(rule.bg_threshold)
                known.bg_scale.fill_(rule.bg_scale)
