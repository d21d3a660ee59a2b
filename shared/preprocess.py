"""Numpy re-implementation of ``Resize(256) -> CenterCrop(224) -> ToTensor() -> Normalize()``.

It reproduces torchvision on PIL images bit for bit: Pillow's antialiased BILINEAR resample
(libImaging/Resample.c: triangle filter whose support scales with the downscale factor, weights in
22-bit fixed point, horizontal pass first, uint8 rounding between passes), torchvision's output-size
truncation and center-crop rounding, then /255 and ImageNet normalisation in float32.

Speed comes from two things. Only the pixels that survive the center crop are resampled (each output
pixel depends only on its own filter window, so this changes nothing). And each pass is a handful of
banded matrix products that BLAS computes exactly: in float64 every product of a uint8 pixel and a
22-bit integer weight, and every sum of them, is an integer below 2**53. A horizontal pass with a
wide filter (a large downscale: a big PNG, say; JPEGs are draft-decoded to at most about twice the
resize) reads many input pixels per output and runs in float32 (half the memory traffic) with each
weight split into a high and a low part (``w = hi * 1024 + lo``): every partial sum then stays an
integer below 2**24, exact in float32, and ``hi_sum * 1024 + lo_sum`` is Pillow's sum. Filters wider
than 64 taps (a downscale beyond ~32x) would break that bound and use float64 instead. Narrow
filters (the usual photo) run in float64 in narrower blocks: fewer numpy calls per output, which is
where their time went.
"""

import math
from functools import lru_cache

import numpy as np

from shared.spec import DEFAULT_SPEC, PreprocessSpec

_PRECISION_BITS = 22
_HALF = float(1 << (_PRECISION_BITS - 1))
_INV_ONE = 1.0 / (1 << _PRECISION_BITS)
# Outputs computed per matrix product: each block's inputs span about this many filter widths.
# Wider blocks multiply more zero weights, narrower ones make more (small) products. Measured with
# the bundle's numpy on one thread (scripts/bench.py's preprocess row): narrow filters (up to
# _NARROW_TAPS taps, downscales below ~3.5x) are fastest in float64 blocks of 4 filter widths
# (300x300: 0.76 vs 1.01 ms for float32 blocks of 8; 640x480: 1.28 vs 1.89 ms), wider ones in
# split-float32 blocks of 8.
_CHUNK_FILTERS = 8
_NARROW_CHUNK_FILTERS = 4
_NARROW_TAPS = 8
# Rows per block of the horizontal pass: about 2 MB of float input, so the planar copy of a block
# is still in cache when the products read it.
_BLOCK_VALUES = 1 << 19
_ONE_BLOCK_VALUES = 1 << 20
# Split weights: lo < 2**10, so 64 taps of 255 * 1023 stay below 2**24 (float32's exact range).
_SPLIT_BITS = 10
_SPLIT_MAX_TAPS = 64
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


def _narrow(in_size: int, out_size: int, start: int, stop: int) -> bool:
    _, count, _ = _coefficients(in_size, out_size)
    return int(count[start:stop].max()) <= _NARROW_TAPS


@lru_cache(maxsize=64)
def _bands(in_size: int, out_size: int, start: int, stop: int) -> tuple[_Band, ...]:
    """Outputs ``start..stop`` as dense weight blocks over contiguous input windows.

    Each block is ``(first_input, last_input, first_output, last_output, weights)`` with
    ``weights`` shaped ``(inputs, outputs)``; window bounds are relative to the first input used.
    """
    first, count, fixed = _coefficients(in_size, out_size)
    origin = int(first[start])
    filters = _NARROW_CHUNK_FILTERS if _narrow(in_size, out_size, start, stop) else _CHUNK_FILTERS
    chunk = max(1, int(filters * int(count.max()) * out_size / in_size))
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


@lru_cache(maxsize=64)
def _split_bands(in_size: int, out_size: int, start: int, stop: int) -> tuple[_Band, ...] | None:
    """:func:`_bands` with float32 weights ``[hi | lo]`` side by side, or None for a filter too
    wide for float32 sums, or narrow enough that float64 is faster."""
    _, count, _ = _coefficients(in_size, out_size)
    taps = int(count[start:stop].max())
    if taps > _SPLIT_MAX_TAPS or taps <= _NARROW_TAPS:
        return None
    split = []
    for a, b, j0, j1, weights in _bands(in_size, out_size, start, stop):
        high = np.floor(weights / (1 << _SPLIT_BITS))
        low = weights - high * (1 << _SPLIT_BITS)
        both = np.concatenate([high, low], axis=1).astype(np.float32)
        both.setflags(write=False)
        split.append((a, b, j0, j1, both))
    return tuple(split)


def _window(in_size: int, out_size: int, start: int, stop: int) -> tuple[int, int]:
    """The input range that outputs ``start..stop`` read."""
    first, count, _ = _coefficients(in_size, out_size)
    return int(first[start]), int((first[start:stop] + count[start:stop]).max())


def _horizontal(
    region: np.ndarray, in_size: int, out_size: int, cols: tuple[int, int]
) -> np.ndarray:
    """uint8 ``(R, W, 3)`` window -> planar float64 ``(3, R, cols)``, rounded like Pillow."""
    rows, width = region.shape[0], cols[1] - cols[0]
    split = _split_bands(in_size, out_size, *cols)
    bands = split or _bands(in_size, out_size, *cols)
    dtype = np.float32 if split else np.float64
    # Blocks of rows keep the uint8 -> float planar copy in cache for the products that read it. A
    # narrow filter's window up to ~8 MB is one block, its products written straight into the
    # output (300x300: 0.52 -> 0.41 ms); larger ones measured no faster that way.
    if split is None and region.size <= _ONE_BLOCK_VALUES:
        step = rows
    else:
        step = max(16, _BLOCK_VALUES // (3 * region.shape[1]))
    out = np.empty((3, rows, width), dtype=np.float64)
    for r0 in range(0, rows, step):
        block = np.ascontiguousarray(region[r0 : r0 + step].transpose(2, 0, 1), dtype)
        n = block.shape[1]
        flat = block.reshape(3 * n, -1)
        target = out.reshape(3 * rows, width) if n == rows else np.empty((3 * n, width))
        for a, b, j0, j1, weights in bands:
            if split:
                product = flat[:, a:b] @ weights
                high = product[:, : j1 - j0].astype(np.float64)
                target[:, j0:j1] = high * (1 << _SPLIT_BITS) + product[:, j1 - j0 :]
            else:
                np.matmul(flat[:, a:b], weights, out=target[:, j0:j1])
        if n != rows:
            out[:, r0 : r0 + n] = target.reshape(3, n, width)
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


def normalize(planar: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Planar ``(3, H, W)`` values 0..255 -> float32 ``(1, 3, H, W)``, ImageNet-normalised.

    The same float32 operations in the same order as ``ToTensor`` (``x / 255``) and ``Normalize``
    (``(x - mean) / std``), so the result is bit-identical to torchvision's. The division reads
    the pixels as they are and writes float32: for each of the 256 values, a float64 quotient
    rounded to float32 is the float32 quotient (checked for all of them by the parity tests), and
    it saves a pass.
    """
    out = np.empty((1, *planar.shape), dtype=np.float32)
    np.divide(planar, 255.0, out=out[0])
    np.subtract(out, np.asarray(spec.mean, dtype=np.float32)[:, None, None], out=out)
    np.divide(out, np.asarray(spec.std, dtype=np.float32)[:, None, None], out=out)
    return out


def preprocess(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` from :func:`shared.decode.decode` -> float32 ``[1, 3, crop, crop]``."""
    return normalize(resize_crop_planar(rgb, spec), spec)
