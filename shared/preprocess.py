"""Numpy re-implementation of ``Resize(256) -> CenterCrop(224) -> ToTensor() -> Normalize()``.

It reproduces torchvision on PIL images bit for bit: Pillow's antialiased BILINEAR resample
(libImaging/Resample.c: triangle filter whose support scales with the downscale factor, weights in
22-bit fixed point, horizontal pass first, uint8 rounding between passes), torchvision's output-size
truncation and center-crop rounding, then /255 and ImageNet normalisation in float32.

Speed comes from two things. Only the pixels that survive the center crop are resampled (each output
pixel depends only on its own filter window, so this changes nothing). And each pass is a handful of
banded matrix products in float64: every product of a uint8 pixel and a 22-bit integer weight, and
every sum of them, is an integer below 2**53, so BLAS computes Pillow's fixed-point sums exactly.
"""

import math
from functools import lru_cache

import numpy as np

from shared.spec import DEFAULT_SPEC, PreprocessSpec

_PRECISION_BITS = 22
_HALF = float(1 << (_PRECISION_BITS - 1))
_INV_ONE = 1.0 / (1 << _PRECISION_BITS)
# Output columns/rows computed per matrix product: the product reads a window of about
# ``chunk * scale + 2 * support`` inputs, so small chunks waste little work on zero weights.
_CHUNK_INPUTS = 96
_ROW_BLOCK = 128
_Band = tuple[int, int, int, int, np.ndarray]


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """torchvision's ``Resize(size)``: shorter side to ``size``, longer side truncated."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def crop_offsets(width: int, height: int, crop: int) -> tuple[int, int]:
    """torchvision's center-crop ``(left, top)`` (Python's round: halves go to even)."""
    return round((width - crop) / 2.0), round((height - crop) / 2.0)


@lru_cache(maxsize=64)
def _coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's precompute_coeffs + normalize_coeffs_8bpc for BILINEAR, vectorised.

    Returns ``(first, count, weights)``: output ``i`` reads inputs ``first[i] .. first[i]+count[i]``
    with integer weights ``weights[i, :count[i]]`` (as float64, exact).
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale  # bilinear support is 1.0
    ksize = math.ceil(support) * 2 + 1
    centers = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centers + support + 0.5).astype(np.int64), in_size)
    count = last - first
    taps = np.arange(ksize)
    positions = ((taps[None, :] + first[:, None]) - centers[:, None]) + 0.5
    weights = np.maximum(1.0 - np.abs(positions * (1.0 / filterscale)), 0.0)
    weights[taps[None, :] >= count[:, None]] = 0.0
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, totals, out=weights, where=totals != 0.0)
    fixed = np.trunc(0.5 + weights * (1 << _PRECISION_BITS))
    for array in (first, count, fixed):
        array.setflags(write=False)
    return first, count, fixed


def _round_fixed(acc: np.ndarray) -> np.ndarray:
    """Pillow's clip8: ``(acc + 2**21) >> 22`` clipped to 0..255, on exact float64 integers."""
    np.add(acc, _HALF, out=acc)
    np.multiply(acc, _INV_ONE, out=acc)
    np.floor(acc, out=acc)
    return np.clip(acc, 0.0, 255.0, out=acc)


@lru_cache(maxsize=64)
def _bands(in_size: int, out_size: int, start: int, stop: int) -> tuple[_Band, ...]:
    """Outputs ``start..stop`` as dense weight blocks over contiguous input windows.

    Each block is ``(first_input, last_input, first_output, last_output, weights)`` with
    ``weights`` shaped ``(inputs, outputs)``; window bounds are relative to the first input used.
    """
    first, count, fixed = _coefficients(in_size, out_size)
    origin = int(first[start])
    chunk = max(1, int(_CHUNK_INPUTS * out_size / in_size))
    bands = []
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        a = int(first[lo])
        b = int((first[lo:hi] + count[lo:hi]).max())
        weights = np.zeros((b - a, hi - lo), dtype=np.float64)
        for column, i in enumerate(range(lo, hi)):
            f, n = int(first[i]), int(count[i])
            weights[f - a : f - a + n, column] = fixed[i, :n]
        weights.setflags(write=False)
        bands.append((a - origin, b - origin, lo - start, hi - start, weights))
    return tuple(bands)


def _window(in_size: int, out_size: int, start: int, stop: int) -> tuple[int, int]:
    """The input range that outputs ``start..stop`` read."""
    first, count, _ = _coefficients(in_size, out_size)
    return int(first[start]), int((first[start:stop] + count[start:stop]).max())


def _horizontal(
    region: np.ndarray, in_size: int, out_size: int, cols: tuple[int, int]
) -> np.ndarray:
    """uint8 ``(R, W, 3)`` window -> planar float64 ``(3, R, cols)``, rounded like Pillow."""
    rows = region.shape[0]
    bands = _bands(in_size, out_size, *cols)
    out = np.empty((3, rows, cols[1] - cols[0]), dtype=np.float64)
    # Blocks of rows keep the uint8 -> float64 planar copy in cache for the products that read it.
    for r0 in range(0, rows, _ROW_BLOCK):
        block = np.ascontiguousarray(region[r0 : r0 + _ROW_BLOCK].transpose(2, 0, 1), np.float64)
        n = block.shape[1]
        flat = block.reshape(3 * n, -1)
        for a, b, j0, j1, weights in bands:
            out[:, r0 : r0 + n, j0:j1] = (flat[:, a:b] @ weights).reshape(3, n, j1 - j0)
    return _round_fixed(out)


def _vertical(planar: np.ndarray, in_size: int, out_size: int, rows: tuple[int, int]) -> np.ndarray:
    """Planar float64 ``(3, R, C)`` (exact uint8 values) -> ``(3, rows, C)``, rounded like Pillow."""
    out = np.empty((3, rows[1] - rows[0], planar.shape[2]), dtype=np.float64)
    for a, b, i0, i1, weights in _bands(in_size, out_size, *rows):
        np.matmul(weights.T, planar[:, a:b], out=out[:, i0:i1])
    return _round_fixed(out)


def resize_crop_planar(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Resize + center crop as torchvision does, returned planar: float64 ``(3, crop, crop)``.

    Values are exact integers 0..255 (the uint8 image torchvision would produce).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    out_w, out_h = resized_size(width, height, spec.resize)
    left, top = crop_offsets(out_w, out_h, spec.crop)
    rows = (top, top + spec.crop)
    cols = (left, left + spec.crop)
    # Pillow skips an axis whose size does not change; so do we.
    r0, r1 = _window(height, out_h, *rows) if out_h != height else rows
    region = rgb[r0:r1]
    if out_w != width:
        c0, c1 = _window(width, out_w, *cols)
        planar = _horizontal(region[:, c0:c1], width, out_w, cols)
    else:
        planar = np.ascontiguousarray(region[:, cols[0] : cols[1]].transpose(2, 0, 1), np.float64)
    if out_h != height:
        planar = _vertical(planar, height, out_h, rows)
    return planar


def resize_and_crop(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """The uint8 ``(crop, crop, 3)`` image that torchvision's Resize + CenterCrop would give."""
    return resize_crop_planar(rgb, spec).transpose(1, 2, 0).astype(np.uint8)


@lru_cache(maxsize=8)
def _normalize_lut(spec: PreprocessSpec) -> np.ndarray:
    """(3, 256) float32 table: exactly torchvision's ``x.float() / 255`` then ``(x - mean) / std``."""
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None]
    lut = (levels[None, :] - mean) / std
    lut.setflags(write=False)
    return lut


def normalize(planar: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Planar ``(3, H, W)`` values 0..255 -> float32 ``(1, 3, H, W)``, normalised via a table."""
    lut = _normalize_lut(spec)
    levels = planar.astype(np.intp)
    out = np.empty((1, *planar.shape), dtype=np.float32)
    for channel in range(3):
        np.take(lut[channel], levels[channel], out=out[0, channel])
    return out


def preprocess(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` from :func:`shared.decode.decode` -> float32 ``[1, 3, crop, crop]``."""
    return normalize(resize_crop_planar(rgb, spec), spec)
