"""Deterministic test images, generated on the fly (tests never read committed images): pixels,
encoded files, and crafted bytes (EXIF-rotated JPEGs, headers that declare bombs, HEIC/AVIF
containers)."""

import io
import struct
import zlib
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


# How each EXIF orientation stores an upright picture: the inverse of the transpose that shows it.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def exif_jpeg(upright: Image.Image, orientation: int, **options: object) -> bytes:
    """``upright`` stored as a camera would with EXIF ``orientation``: pixels turned, tag set."""
    turn = STORED_AS[orientation]
    stored = upright if turn is None else upright.transpose(turn)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes(), **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    raw = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(encode(synthetic_rgb(16, 16, seed=7), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def iso_bmff(major: bytes, compatible: tuple[bytes, ...] = ()) -> bytes:
    """The start of an ISO-BMFF file (HEIC, AVIF) with these ``ftyp`` brands."""
    box = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (len(box) + 4).to_bytes(4, "big") + box + b"\x00\x00\x00\x08mdat"


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
