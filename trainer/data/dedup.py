"""Near-duplicate photos (re-encoded, resized, mirrored copies) found by a perceptual hash, so
the split can keep each group inside one split instead of leaking it between train and test.

Hash: a 256-bit DCT hash (pHash) of the decoded image and, separately, of its horizontal mirror.
The image is turned to grey and area-averaged to 64x64 (aspect ignored: a resized copy has the
same aspect); the 2-D DCT's 16x16 lowest frequencies are kept and each coefficient becomes one
bit, "above the median of the AC coefficients" (the DC bit is always 0). Low frequencies are the
part of an image that re-encoding, rescaling and mild brightness changes leave alone, and the
median split makes the hash independent of contrast. The mirror is hashed from the flipped
pixels rather than derived from the coefficients, so an exact mirror matches at distance 0.

Why not a difference hash (dHash, 16x16): on sky photos (smooth gradients, a small object) its
bits are signs of near-zero differences, which JPEG noise flips: a q60 copy of a synthetic sky
was up to 49 bits away while two distinct ones came within 25. pHash separates them.

Threshold (:data:`MAX_DISTANCE`, 40 of 256 bits, 15.6%): the largest distance still taken as a
copy. Measured with this module on 200 images of trainer/synthetic.py (128 and 256 px) and,
read-only, on the 307 real photos of realdev, for mirror, 0.5x resize, JPEG q60, q30, and
mirror+resize+q60 together:

* copies within 40: 100% synthetic; 99.3% real (the misses are two near-blank images, a small
  bird on a flat sky, whose few informative bits JPEG moves: 54-70 bits). At 20 bits it would be
  97-99%. A 5% crop, not what this is for, is caught 73-92% of the time;
* distinct images: the closest of 19,900 synthetic pairs (cartoon skies sharing palettes, harder
  than photos) is 48 bits apart, of 46,665 real pairs 72; the median is ~120 (random: 128).

Components are transitive (union-find), so a loose threshold would chain distinct images into
one big group; 40 keeps a margin below every distinct pair measured. Featureless images (a
uniform frame) carry no content to compare and may group with each other; that only keeps them
in the same split.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_BITS = 256
MAX_DISTANCE = 40
_GRID = 64  # pixels per side the image is averaged down to
_KEEP = 16  # lowest DCT frequencies kept per axis: 16 * 16 = 256 bits
_BLOCK = 512  # rows per block of the pairwise distance computation (bounds memory)


def _dct_matrix(n: int, keep: int) -> np.ndarray:
    """Orthonormal DCT-II basis, first ``keep`` frequencies: ``coeffs = D @ x @ D.T``."""
    k = np.arange(keep)[:, None]
    x = np.arange(n)[None, :]
    basis = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    basis[0] /= np.sqrt(2.0)
    return basis


_DCT = _dct_matrix(_GRID, _KEEP)


@dataclass(frozen=True)
class ImageHash:
    """Perceptual hash of an image (``direct``) and of its horizontal mirror, 32 bytes each."""

    direct: bytes
    mirror: bytes

    def distance(self, other: "ImageHash") -> int:
        """Bits that differ, the smaller of same-orientation and mirrored comparison."""
        return int(_distances(_words([self]), _words([other]))[0, 0])


def _grid(grey: Image.Image) -> np.ndarray:
    # BOX is a plain area average: every source pixel counts once, so no aliasing and no
    # dependence on the source size beyond what the content itself changes.
    return np.asarray(grey.resize((_GRID, _GRID), Image.Resampling.BOX), dtype=np.float64)


def _bits(grid: np.ndarray) -> bytes:
    coeffs = (_DCT @ grid @ _DCT.T).reshape(-1)
    ac = coeffs[1:]
    bits = np.concatenate([[False], ac > np.median(ac)])
    return np.packbits(bits).tobytes()


def hash_image(rgb: np.ndarray) -> ImageHash:
    """Hash a decoded ``(H, W, 3)`` uint8 image (from ``shared.decode.decode``) both ways round."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"need a uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
    grey = Image.fromarray(np.ascontiguousarray(rgb)).convert("L")
    mirrored = grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageHash(_bits(_grid(grey)), _bits(_grid(mirrored)))


def _words(hashes: Sequence[ImageHash]) -> np.ndarray:
    """``(N, 2, 4)`` uint64: each hash's direct and mirror bits as four 64-bit words."""
    raw = b"".join(h.direct + h.mirror for h in hashes)
    return np.frombuffer(raw, dtype=np.uint64).reshape(len(hashes), 2, HASH_BITS // 64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` Hamming distances: min(direct-direct, direct-mirror).

    direct(a) vs mirror(b) also covers mirror(a) vs direct(b): both compare a with a flipped b.
    """
    same = np.bitwise_count(a[:, None, 0, :] ^ b[None, :, 0, :]).sum(axis=-1, dtype=np.int64)
    flipped = np.bitwise_count(a[:, None, 0, :] ^ b[None, :, 1, :]).sum(axis=-1, dtype=np.int64)
    return np.minimum(same, flipped)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression keeps later finds O(1)-ish
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def near_duplicate_pairs(
    hashes: Sequence[ImageHash], max_distance: int = MAX_DISTANCE
) -> list[tuple[int, int, int]]:
    """Every ``(i, j, distance)`` with ``i < j`` and ``distance <= max_distance``."""
    words = _words(hashes)
    pairs: list[tuple[int, int, int]] = []
    for start in range(0, len(hashes), _BLOCK):
        block = _distances(words[start : start + _BLOCK], words[start:])
        rows, cols = np.nonzero(block <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i, j = start + r, start + c
            if i < j:
                pairs.append((i, j, int(block[r, c])))
    return pairs


def group_near_duplicates(
    hashes: Sequence[ImageHash | None],
    sha256s: Sequence[str],
    max_distance: int = MAX_DISTANCE,
) -> list[int]:
    """A group id per item: connected components of "near-duplicate or byte-identical".

    Ids are ``0, 1, ...`` in order of each group's first item, so the result depends only on the
    input order. An item whose hash is ``None`` (not hashed) joins groups by sha256 only.
    """
    if len(hashes) != len(sha256s):
        raise ValueError(f"{len(hashes)} hashes but {len(sha256s)} sha256s")
    sets = _UnionFind(len(hashes))
    first_with_digest: dict[str, int] = {}
    for i, digest in enumerate(sha256s):
        sets.union(first_with_digest.setdefault(digest, i), i)
    hashed = [i for i, h in enumerate(hashes) if h is not None]
    known = [h for h in hashes if h is not None]
    for a, b, _ in near_duplicate_pairs(known, max_distance):
        sets.union(hashed[a], hashed[b])
    ids: dict[int, int] = {}
    return [ids.setdefault(sets.find(i), len(ids)) for i in range(len(hashes))]
