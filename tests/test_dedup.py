"""trainer.data.dedup: copies of a photo group together, distinct photos do not, bytes always do."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.decode import decode
from shared.labels import DEFAULT_LABELS
from tests.imagegen import encode
from trainer.data.dedup import (
    HASH_BITS,
    MAX_DISTANCE,
    ImageHash,
    group_near_duplicates,
    hash_image,
    near_duplicate_pairs,
)
from trainer.data.scan import Candidate, check_file, scan
from trainer.data.synthetic import render


def _photo(index: int, size: int = 256) -> np.ndarray:
    """A structured, photo-like image: sky gradient, clouds, an object, blur and sensor noise."""
    return render(DEFAULT_LABELS[index % 4], index, seed=11, size=size)


def _roundtrip(rgb: np.ndarray, fmt: str = "PNG", **options: object) -> np.ndarray:
    """Encode then decode through shared.decode, as a collected file would be read."""
    return decode(encode(rgb, fmt, **options))


def _resized(rgb: np.ndarray, factor: float) -> np.ndarray:
    image = Image.fromarray(rgb)
    size = (round(image.width * factor), round(image.height * factor))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def _copies(rgb: np.ndarray) -> dict[str, np.ndarray]:
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    return {
        "mirror": _roundtrip(mirrored),
        "half size": _roundtrip(_resized(rgb, 0.5)),
        "jpeg q60": _roundtrip(rgb, "JPEG", quality=60),
        "mirror + 0.5x + q60": _roundtrip(_resized(mirrored, 0.5), "JPEG", quality=60),
    }


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_mirrored_resized_and_reencoded_copies_group_with_the_original() -> None:
    hashes, owners = [], []
    for base in range(4):
        original = _roundtrip(_photo(base), "JPEG", quality=90)
        first = hash_image(original)
        hashes.append(first)
        owners.append(base)
        for name, copy in _copies(original).items():
            h = hash_image(copy)
            assert h.distance(first) <= MAX_DISTANCE, name
            hashes.append(h)
            owners.append(base)
    groups = group_near_duplicates(hashes, [_sha(i) for i in range(len(hashes))])
    # One group per original, holding exactly its copies.
    assert len(set(groups)) == 4
    for base in range(4):
        assert len({g for g, o in zip(groups, owners, strict=True) if o == base}) == 1


def test_an_exact_mirror_matches_at_distance_zero() -> None:
    rgb = _photo(5)
    assert hash_image(rgb).distance(hash_image(np.ascontiguousarray(rgb[:, ::-1]))) == 0
    assert hash_image(rgb).direct != hash_image(np.ascontiguousarray(rgb[:, ::-1])).direct


def test_distinct_photos_do_not_group() -> None:
    """False-positive side: 200 distinct images, 19,900 pairs, none within the threshold."""
    hashes = [hash_image(_roundtrip(_photo(i, 128), "JPEG", quality=85)) for i in range(200)]
    pairs = near_duplicate_pairs(hashes, HASH_BITS)
    distances = np.array([d for _, _, d in pairs])
    assert len(distances) == 200 * 199 // 2
    assert int(np.sum(distances <= MAX_DISTANCE)) == 0, sorted(distances)[:5]
    # Not merely just past the threshold: typical distinct images differ in about half the bits.
    assert 100 < np.median(distances) < 140
    groups = group_near_duplicates(hashes, [_sha(i) for i in range(200)])
    assert groups == list(range(200))


def test_byte_identical_files_always_share_a_group() -> None:
    far = [hash_image(_photo(i)) for i in range(3)]
    assert far[0].distance(far[2]) > MAX_DISTANCE
    groups = group_near_duplicates([far[0], far[1], far[2], None], ["x", "y", "x", "y"])
    assert groups == [0, 1, 0, 1]


def _hash_with_bits(bits: list[int]) -> ImageHash:
    raw = np.zeros(HASH_BITS, bool)
    raw[bits] = True
    packed = np.packbits(raw).tobytes()
    return ImageHash(packed, packed)


def test_groups_are_connected_components_in_first_seen_order() -> None:
    # a-b 30 bits apart, b-c 30 apart, a-c 60: a chain is one group; d is far from all.
    a = _hash_with_bits([])
    b = _hash_with_bits(list(range(30)))
    c = _hash_with_bits(list(range(60)))
    d = _hash_with_bits(list(range(100, 200)))
    assert group_near_duplicates([d, a, c, b], ["1", "2", "3", "4"], max_distance=30) == [
        0,
        1,
        1,
        1,
    ]
    assert group_near_duplicates([d, a, c, b], ["1", "2", "3", "4"], max_distance=29) == [
        0,
        1,
        2,
        3,
    ]


def test_vectorised_distances_match_a_plain_bit_comparison() -> None:
    rng = np.random.default_rng(0)
    n = 600  # more than one block of rows
    hashes = [ImageHash(rng.bytes(32), rng.bytes(32)) for _ in range(n)]
    direct = np.unpackbits(np.frombuffer(b"".join(h.direct for h in hashes), np.uint8))
    mirror = np.unpackbits(np.frombuffer(b"".join(h.mirror for h in hashes), np.uint8))
    direct, mirror = direct.reshape(n, HASH_BITS), mirror.reshape(n, HASH_BITS)
    expected = {}
    for i in range(n):
        d = np.minimum((direct[i] != direct).sum(1), (direct[i] != mirror).sum(1))
        expected.update({(i, int(j)): int(d[j]) for j in np.flatnonzero(d <= 110) if j > i})
    pairs = {(i, j): d for i, j, d in near_duplicate_pairs(hashes, 110)}
    assert pairs == expected and len(expected) > 10


def test_hash_input_checks() -> None:
    h = hash_image(_photo(1))
    assert len(h.direct) == len(h.mirror) == 32
    with pytest.raises(ValueError):
        hash_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        group_near_duplicates([h], ["a", "b"])


def test_scan_hashes_the_pixels_it_decodes(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    data = encode(_photo(2), "JPEG", quality=90)
    (tmp_path / "A" / "x.jpg").write_bytes(data)
    (tmp_path / "A" / "bad.jpg").write_bytes(b"not an image")
    candidates = [Candidate("A/x.jpg", "A"), Candidate("A/bad.jpg", "A")]
    scanned, skipped = scan(tmp_path, candidates, progress=False)
    assert [s.candidate.rel for s in scanned] == ["A/x.jpg"] and len(skipped) == 1
    assert scanned[0].sha256 == hashlib.sha256(data).hexdigest()
    assert scanned[0].phash == hash_image(decode(data))
    # The old tuple API is unchanged for trainer.prepare.
    assert check_file(tmp_path / "A" / "x.jpg") == (scanned[0].sha256, None)
    assert check_file(tmp_path / "A" / "bad.jpg")[0] is None


def test_hash_ignores_the_encoding_container() -> None:
    rgb = _photo(3)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="WEBP", lossless=True)
    assert hash_image(decode(buffer.getvalue())) == hash_image(rgb)
