"""A tiny but real ``trainer.fit`` run folder, fabricated in seconds for export/API tests.

``make_run(tmp)`` writes generated images (one visual style per class, so a classifier can tell
them apart), a ``split.json`` manifest with train, val and test, and ``best.pt``: a real
MobileNetV2 (random backbone, no download) whose linear head is fitted on the backbone's features
of these images so its predictions are confident and correct, which makes the val-based decisions
(temperature, the INT8 gate) meaningful.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared import DEFAULT_LABELS, DEFAULT_SPEC
from shared.decode import decode
from shared.preprocess import preprocess
from tests.imagegen import encode, synthetic_rgb
from trainer.data.manifest import Item, Manifest
from trainer.learning.checkpoint import BEST, Checkpoint, RunInfo, save_checkpoint
from trainer.learning.config import TrainConfig
from trainer.model.classifier import build_model

STYLES = ("noise", "flat", "gradient", "mixed")  # one per class
SIZES = ((320, 256), (256, 300), (400, 260), (260, 260), (300, 420))


@dataclass(frozen=True)
class FakeRun:
    run_dir: Path
    data_root: Path
    manifest: Manifest
    checkpoint: Checkpoint


def _images(data_root: Path, labels: tuple[str, ...], per_class: int) -> list[tuple[str, str]]:
    """Write ``per_class`` images per label; return ``(relative path, label)``."""
    out = []
    for c, label in enumerate(labels):
        folder = data_root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            width, height = SIZES[i % len(SIZES)]
            rgb = synthetic_rgb(width, height, seed=100 * c + i, content=STYLES[c % len(STYLES)])
            fmt, ext = ("PNG", "png") if i % 3 == 2 else ("JPEG", "jpg")
            (folder / f"{i:03d}.{ext}").write_bytes(encode(rgb, fmt))
            out.append((f"{label}/{i:03d}.{ext}", label))
    return out


def _fit_head(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> None:
    """Fit only the head on frozen backbone features (milliseconds: features computed once)."""
    model.eval()
    with torch.no_grad():
        features = model.features(x)
    # A random backbone's features have arbitrary scale: the head standardises them.
    model.head[0].set(features.mean(0), features.std(0).clamp_min(1e-6))
    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.head(features), y)
        loss.backward()
        optimizer.step()


def make_run(
    root: Path,
    *,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    train_per_class: int = 3,
    val_per_class: int = 2,
    test_per_class: int = 2,
    seed: int = 0,
) -> FakeRun:
    """A run folder under ``root`` with ``best.pt`` and ``split.json`` (images under root/data)."""
    data_root = root / "data"
    run_dir = root / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    files = _images(data_root, labels, train_per_class + val_per_class + test_per_class)
    items = []
    for group, (rel, label) in enumerate(files):
        index = int(Path(rel).stem)
        split = (
            "train"
            if index < train_per_class
            else "val"
            if index < train_per_class + val_per_class
            else "test"
        )
        digest = hashlib.sha256((data_root / rel).read_bytes()).hexdigest()
        items.append(Item(rel, label, split, digest, group))
    manifest = Manifest(
        str(data_root), labels, tuple(items), seed=seed, val_fraction=0.3, test_fraction=0.3
    )
    manifest.save(run_dir)

    torch.manual_seed(seed)
    model = build_model("mobilenet_v2", len(labels), weights="none", head="linear", dropout=0.2)
    x = torch.from_numpy(
        np.concatenate(
            [preprocess(decode((data_root / rel).read_bytes()), DEFAULT_SPEC) for rel, _ in files]
        )
    )
    y = torch.tensor([labels.index(label) for _, label in files])
    _fit_head(model, x, y)
    val = [i for i, it in enumerate(items) if it.split == "val"]
    with torch.no_grad():
        val_logits = model.eval()(x[val]).numpy()
    # Trained in epochs as far as the config says: its temperature is fitted on val at export.
    config = TrainConfig(
        data=str(data_root), weights="none", unfreeze_last=-1, epochs=1, seed=seed,
        resize=DEFAULT_SPEC.resize, crop=DEFAULT_SPEC.crop, mirror=False,
    )  # fmt: skip
    checkpoint = Checkpoint(
        config=config,
        info=RunInfo("fake-run", "2026-01-01T00:00:00Z", "0" * 40, "none"),
        labels=labels,
        split_sha256=manifest.sha256(),
        class_counts=manifest.counts(),
        epoch=1,
        model_state=model.state_dict(),
        best_epoch=1,
        best_score=1.0,
        weight_decay=1e-4,
        val_logits=val_logits,
        val_targets=np.array([labels.index(it.label) for it in items if it.split == "val"]),
        val_metrics={"loss": 0.1, "accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0},
    )
    save_checkpoint(run_dir / BEST, checkpoint)
    return FakeRun(run_dir, data_root, manifest, checkpoint)
