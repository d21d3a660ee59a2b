"""Deterministic test images, generated on the fly (tests never read committed images)."""

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_rgb(width: int, height: int, seed: int = 0, content: str = "mixed") -> np.ndarray:
    """A uint8 ``(height, width, 3)`` image: ``noise``, ``flat``, ``gradient`` or ``mixed``."""
    rng = np.random.default_rng(seed)
    if content == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if content == "flat":
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3)).copy()
    yy, xx = np.mgrid[0:height, 0:width]
    gradient = np.stack(
        [
            255 * xx / max(width - 1, 1),
            255 * yy / max(height - 1, 1),
            127.5 + 127.5 * np.sin((xx + yy) / max(3.0, min(width, height) / 7)),
        ],
        axis=-1,
    )
    if content == "gradient":
        return np.clip(np.rint(gradient), 0, 255).astype(np.uint8)
    noise = rng.normal(0, 25, (height, width, 3))
    return np.clip(np.rint(gradient + noise), 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str = "JPEG", **options: object) -> bytes:
    """Encode an RGB array with Pillow (``fmt`` as Pillow names it)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


STYLES = ("noise", "flat", "gradient", "mixed")  # one per class: a style a classifier can learn


def write_dataset(
    root: Path,
    labels: Sequence[str],
    indices: Iterable[int] | int,
    *,
    kind: str = "styles",
    size: int = 80,
    fmt: str = "PNG",
    folders: Sequence[str] | None = None,
    styles: Sequence[str] = STYLES,
) -> Path:
    """Write ``root/<label>/<index:03d>.<ext>`` for every label (or into ``folders``, one per
    label, named otherwise: negatives, say), and return ``root``.

    ``kind`` "styles": one :data:`STYLES` style per class, sizes varying around ``size``;
    "cartoons": the demo's rendered cartoons of the label (``trainer.data.synthetic``), which need the
    four default labels' names.
    """
    from trainer.data.synthetic import render

    numbers = range(indices) if isinstance(indices, int) else indices
    ext = {"PNG": "png", "JPEG": "jpg"}[fmt]
    for c, label in enumerate(labels):
        folder = Path(root) / (folders[c] if folders else label)
        folder.mkdir(parents=True, exist_ok=True)
        for i in numbers:
            if kind == "cartoons":
                rgb = render(label, i, size=size)
            else:
                style = styles[c % len(styles)]
                rgb = synthetic_rgb(size + i % 20, size - 8, seed=100 * c + i, content=style)
            (folder / f"{i:03d}.{ext}").write_bytes(encode(rgb, fmt))
    return Path(root)
