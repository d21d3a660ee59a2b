"""Data discovery, cleaning and the split manifest of trainer.fit."""

import numpy as np
import pytest
import torch
from PIL import Image

from shared import DEFAULT_SPEC
from shared.cli import UsageError
from shared.decode import decode
from shared.preprocess import preprocess
from tests.imagegen import encode, synthetic_rgb
from trainer.data.images import NO_AUGMENT, AugmentOptions, eval_transform, train_transform
from trainer.data.manifest import Manifest
from trainer.data.split import allocate, prepare_split


def make_folder(root, per_class=(5, 5, 5), size=(40, 32), seed=0):
    for c, n in enumerate(per_class):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rgb = synthetic_rgb(*size, seed=seed + 100 * c + i)
            (folder / f"{i}.png").write_bytes(encode(rgb, "PNG"))
    return root


def test_split_is_stratified_and_deterministic_for_a_seed(tmp_path) -> None:
    root = make_folder(tmp_path / "data", per_class=(10, 7, 4))
    split = {"val_fraction": 0.2, "test_fraction": 0.3, "progress": False}
    a = prepare_split(root, seed=3, **split).manifest
    b = prepare_split(root, seed=3, **split).manifest
    c = prepare_split(root, seed=4, **split).manifest
    assert a.to_json() == b.to_json() and a.sha256() == b.sha256()
    assert a.sha256() != c.sha256()
    assert a.counts() == {
        "train": {"class0": 5, "class1": 4, "class2": 2},
        "val": {"class0": 2, "class1": 1, "class2": 1},
        "test": {"class0": 3, "class1": 2, "class2": 1},
    }
    assert a.notes == () and a.duplicates == ()
    a.save(tmp_path / "run")
    loaded = Manifest.load(tmp_path / "run")
    assert loaded.sha256() == a.sha256()
    paths = loaded.split("test")
    assert all(p.is_file() for p, _ in paths) and {y for _, y in paths} == {0, 1, 2}


def test_cleaning_skips_corrupt_files_and_removes_leakage(tmp_path) -> None:
    root = tmp_path / "data"
    make_folder(root / "train", per_class=(3, 3))
    make_folder(root / "test", per_class=(2, 2), seed=50)
    (root / "train" / "class0" / "notes.txt").write_text("not an image")
    good = encode(synthetic_rgb(64, 48, seed=9), "JPEG")
    (root / "train" / "class1" / "torn.jpg").write_bytes(good[: len(good) // 2])
    (root / "train" / "class1" / "empty.png").write_bytes(b"")
    (root / "train" / "class0" / ".hidden.png").write_bytes(b"ignored entirely")
    # A test image that is byte-identical to a training image: leakage.
    (root / "test" / "class0" / "leak.png").write_bytes((root / "train/class0/1.png").read_bytes())

    prepared = prepare_split(root, progress=False)

    reasons = {s.path: s.reason for s in prepared.skipped}
    assert set(reasons) == {
        "train/class0/notes.txt",
        "train/class1/torn.jpg",
        "train/class1/empty.png",
        "test/class0/leak.png",
    }
    # Its twin may have been carved into val: it is dropped as a copy of that split's file.
    assert reasons["test/class0/leak.png"] in {
        f"leakage: byte-identical to {split} file train/class0/1.png" for split in ("train", "val")
    }
    assert "empty" in reasons["train/class1/empty.png"]
    manifest = prepared.manifest
    assert manifest.presplit
    paths = {it.path for it in manifest.items}
    assert not paths & set(reasons) and len(paths) == 10
    assert manifest.counts()["val"] == {"class0": 1, "class1": 1}  # carved from train/
    assert manifest.counts()["test"] == {"class0": 2, "class1": 2}
    for path, _ in manifest.split("train") + manifest.split("val") + manifest.split("test"):
        decode(path.read_bytes())  # everything kept decodes


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("one_class", "at least two"),
        ("empty_class", "class 'class1' has no readable images"),
        ("all_corrupt", "class 'class0' has no readable images"),
    ],
)
def test_unusable_data_gets_a_clear_message(tmp_path, layout, message) -> None:
    root = tmp_path / "data"
    if layout == "one_class":
        make_folder(root, per_class=(4,))
    elif layout == "empty_class":
        make_folder(root, per_class=(4,))
        (root / "class1").mkdir()
    elif layout == "all_corrupt":
        make_folder(root, per_class=(0, 3))
        (root / "class0" / "x.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_split(root, progress=False)


def test_eval_transform_is_the_shared_contract() -> None:
    rgb = synthetic_rgb(300, 260, seed=5)
    tensor = eval_transform(DEFAULT_SPEC)(rgb)
    assert torch.equal(tensor, torch.from_numpy(preprocess(rgb, DEFAULT_SPEC)[0]))


def test_train_transform_augments_reproducibly_and_can_be_turned_off() -> None:
    rgb = synthetic_rgb(300, 260, seed=6)
    augment = train_transform(DEFAULT_SPEC, AugmentOptions())
    torch.manual_seed(0)
    a = augment(rgb)
    torch.manual_seed(0)
    assert torch.equal(a, augment(rgb)) and a.shape == (3, 224, 224)
    assert not torch.equal(a, augment(rgb))
    plain = train_transform(DEFAULT_SPEC, NO_AUGMENT)(rgb)
    # Without augmentation, training sees what eval sees (up to float rounding of two code paths).
    expected = preprocess(rgb, DEFAULT_SPEC)[0]
    assert np.abs(plain.numpy() - expected).max() < 1e-5


def test_tiny_classes_still_train_and_are_named(tmp_path) -> None:
    root = make_folder(tmp_path / "data", per_class=(10, 2, 1))
    manifest = prepare_split(root, val_fraction=0.2, test_fraction=0.2, progress=False).manifest
    counts = manifest.counts()
    assert counts["train"] == {"class0": 6, "class1": 1, "class2": 1}  # every class trains
    assert counts["val"] == {"class0": 2, "class1": 1, "class2": 0}
    assert counts["test"] == {"class0": 2, "class1": 0, "class2": 0}
    assert manifest.notes == (
        "too few images for val: class2 (no val image; its val metrics are absent, not zero)",
        "too few images for test: class1, class2 (no test image; its test metrics are absent, "
        "not zero)",
    )


@pytest.mark.parametrize(
    ("n", "val", "test", "expected"),
    [(1, 0.2, 0.2, (0, 0)), (2, 0.2, 0.2, (1, 0)), (3, 0.2, 0.2, (1, 1)), (10, 0.2, 0.3, (2, 3)),
     (10, 0.2, 0.0, (2, 0)), (4, 0.5, 0.4, (2, 1))],
)  # fmt: skip
def test_allocation_keeps_a_training_image(n, val, test, expected) -> None:
    assert allocate(n, val, test) == expected
    assert n - sum(allocate(n, val, test)) >= 1


def _photo_like(seed: int) -> np.ndarray:
    """A smooth scene with an object: what collected photos look like, unlike noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:180, 0:240]
    sky = np.stack([90 + 0.3 * y, 140 + 0.2 * y, 220 - 0.1 * y], axis=-1)
    cx, cy, r = rng.integers(60, 180), rng.integers(40, 140), rng.integers(15, 40)
    sky[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.integers(0, 255, 3)
    sky[rng.integers(0, 150) :, rng.integers(0, 200) :][:20, :30] = rng.integers(0, 255, 3)
    return np.clip(sky, 0, 255).astype(np.uint8)


def test_near_duplicates_land_in_one_split(tmp_path) -> None:
    root = tmp_path / "data"
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(12):
            rgb = _photo_like(100 * c + i)
            (root / f"class{c}" / f"{i}.png").write_bytes(encode(rgb, "PNG"))
    original = _photo_like(3)
    mirrored = original[:, ::-1]
    resized = np.asarray(Image.fromarray(original).resize((120, 90), Image.Resampling.BILINEAR))
    (root / "class0" / "3_mirror.png").write_bytes(encode(np.ascontiguousarray(mirrored), "PNG"))
    (root / "class0" / "3_small.jpg").write_bytes(encode(resized, "JPEG", quality=70))
    copies = {"class0/3.png", "class0/3_mirror.png", "class0/3_small.jpg"}
    for seed in range(6):  # whichever split the group lands in, it lands there whole
        manifest = prepare_split(root, seed=seed, progress=False).manifest
        splits = {it.split for it in manifest.items if it.path in copies}
        assert len(splits) == 1, (seed, splits)
        assert tuple(sorted(copies)) in manifest.duplicates
        assert len({it.group for it in manifest.items if it.path in copies}) == 1
        assert len(manifest.duplicates) == 1  # no distinct images grouped


def test_presplit_val_folder_is_used_and_copies_across_splits_are_dropped(tmp_path) -> None:
    root = tmp_path / "data"
    make_folder(root / "train", per_class=(4, 4))
    make_folder(root / "val", per_class=(2, 2), seed=40)
    make_folder(root / "test", per_class=(2, 2), seed=60)
    rgb = decode((root / "train/class1/0.png").read_bytes())
    (root / "test/class1/copy.jpg").write_bytes(encode(rgb[:, ::-1].copy(), "JPEG", quality=85))
    prepared = prepare_split(root, progress=False)
    counts = prepared.manifest.counts()
    assert counts["val"] == {"class0": 2, "class1": 2} and counts["train"]["class0"] == 4
    assert counts["test"] == {"class0": 2, "class1": 2}  # the mirrored copy left test
    (skip,) = [s for s in prepared.skipped if s.path == "test/class1/copy.jpg"]
    assert skip.reason == "leakage: a near-duplicate of train file train/class1/0.png"
