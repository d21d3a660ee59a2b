"""Data discovery, cleaning and the split manifest of trainer.fit."""

import numpy as np
import pytest
import torch

from shared import DEFAULT_SPEC
from shared.cli import UsageError
from shared.decode import decode
from shared.preprocess import preprocess
from tests.imagegen import encode, synthetic_rgb
from trainer.augment import NO_AUGMENT, AugmentOptions, eval_transform, train_transform
from trainer.data import class_counts, prepare_split
from trainer.manifest import Manifest


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
    a = prepare_split(root, seed=3, test_fraction=0.3, progress=False).manifest
    b = prepare_split(root, seed=3, test_fraction=0.3, progress=False).manifest
    c = prepare_split(root, seed=4, test_fraction=0.3, progress=False).manifest
    assert a.to_json() == b.to_json() and a.sha256() == b.sha256()
    assert a.sha256() != c.sha256()
    assert class_counts(a) == {
        "train": {"class0": 7, "class1": 5, "class2": 3},
        "test": {"class0": 3, "class1": 2, "class2": 1},
    }
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
    assert (
        reasons["test/class0/leak.png"]
        == "leakage: byte-identical to train file train/class0/1.png"
    )
    assert "empty" in reasons["train/class1/empty.png"]
    manifest = prepared.manifest
    assert manifest.presplit
    paths = {it.path for it in manifest.items}
    assert not paths & set(reasons) and len(paths) == 10
    for path, _ in manifest.split("train") + manifest.split("test"):
        decode(path.read_bytes())  # everything kept decodes


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("one_class", "at least two"),
        ("empty_class", "class 'class1' has no readable images"),
        ("tiny_class", "class 'class1' has 1 readable image(s)"),
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
    elif layout == "tiny_class":
        make_folder(root, per_class=(4, 1))
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
