"""Find the dataset, clean it, split it and describe the result as a split manifest.

Layouts (ImageFolder style, class names and their order from the sorted folder names):

* ``DATA/<class>/...`` - one folder; the trainer splits it, stratified and seeded.
* ``DATA/train/<class>/...`` and ``DATA/test/<class>/...`` - already split; used as is.

Files may sit in nested folders below a class folder. Hidden files and folders are ignored;
everything else is a candidate, and the scan decides what is an image.
"""

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.cli import UsageError
from trainer.cleaning import Candidate, Scanned, Skipped, scan, split_leakage
from trainer.manifest import Item, Manifest

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Prepared:
    manifest: Manifest
    skipped: list[Skipped]


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files_under(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def discover(root: Path) -> tuple[tuple[str, ...], list[Candidate], bool]:
    """``(labels, candidates, presplit)`` for a data folder, or a :class:`UsageError`."""
    if not root.exists():
        raise UsageError(
            f"data folder {root} does not exist; pass a folder with one sub-folder per class"
        )
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; pass a folder with one sub-folder per class")
    top = _visible_dirs(root)
    presplit = {p.name for p in top} >= set(SPLITS)
    if presplit:
        labels = tuple(p.name for p in _visible_dirs(root / "train"))
        extra = sorted({p.name for p in _visible_dirs(root / "test")} - set(labels))
        if extra:
            raise UsageError(
                f"{root / 'test'} has classes missing from train/: {extra}; "
                "train/ and test/ need the same class folders"
            )
        folders = [(split, label, root / split / label) for split in SPLITS for label in labels]
    else:
        labels = tuple(p.name for p in top)
        folders = [(None, label, root / label) for label in labels]
    if len(labels) < 2:
        where = root / "train" if presplit else root
        raise UsageError(
            f"{where} has {len(labels)} class folder(s) {list(labels)}; "
            "a classifier needs at least two (one sub-folder per class)"
        )
    candidates = [
        Candidate(path.relative_to(root).as_posix(), label, split)
        for split, label, folder in folders
        if folder.is_dir()
        for path in _files_under(folder)
    ]
    return labels, candidates, presplit


def _check_counts(labels: Sequence[str], counts: Counter[str], where: str, minimum: int) -> None:
    for label in labels:
        n = counts.get(label, 0)
        if n == 0:
            raise UsageError(
                f"class '{label}' has no readable images{where}; add images or remove the folder "
                "(skipped.csv in the run folder lists files that failed to decode)"
            )
        if n < minimum:
            raise UsageError(
                f"class '{label}' has {n} readable image(s){where}, fewer than the {minimum} the "
                "split needs (at least one for train and one for test); add images"
            )


def split_stratified(
    scanned: Sequence[Scanned], labels: Sequence[str], seed: int, test_fraction: float
) -> list[tuple[Scanned, str]]:
    """Assign each file to train or test, per class, reproducibly for ``seed``."""
    out: list[tuple[Scanned, str]] = []
    for label in labels:
        members = sorted(
            (s for s in scanned if s.candidate.label == label), key=lambda s: s.candidate.rel
        )
        # A string seed is hashed deterministically (SHA-512), independent of PYTHONHASHSEED.
        random.Random(f"{seed}:{label}").shuffle(members)
        n_test = min(len(members) - 1, max(1, round(len(members) * test_fraction)))
        out += [(s, "test") for s in members[:n_test]]
        out += [(s, "train") for s in members[n_test:]]
    return out


def prepare_split(
    root: str | Path, *, seed: int = 0, test_fraction: float = 0.3, progress: bool = True
) -> Prepared:
    """Discover, scan, split and de-leak ``root``; raise :class:`UsageError` on unusable data."""
    if not 0.0 < test_fraction < 1.0:
        raise UsageError(
            f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}"
        )
    root = Path(root).expanduser().resolve()
    labels, candidates, presplit = discover(root)
    scanned, skipped = scan(root, candidates, progress=progress)
    if presplit:
        for split in SPLITS:
            counts = Counter(s.candidate.label for s in scanned if s.candidate.split == split)
            _check_counts(labels, counts, f" in {split}/", 1)
        assigned = [(s, s.candidate.split or "train") for s in scanned]
    else:
        _check_counts(labels, Counter(s.candidate.label for s in scanned), "", 2)
        assigned = split_stratified(scanned, labels, seed, test_fraction)
    leaked, reports = split_leakage(
        ((s.candidate.rel, s.sha256) for s, split in assigned if split == "train"),
        ((s.candidate.rel, s.sha256) for s, split in assigned if split == "test"),
    )
    items = tuple(
        Item(s.candidate.rel, s.candidate.label, split, s.sha256)
        for s, split in sorted(assigned, key=lambda a: (SPLITS.index(a[1]), a[0].candidate.rel))
        if s.candidate.rel not in leaked
    )
    if not presplit or leaked:
        _check_counts(
            labels, Counter(it.label for it in items if it.split == "test"), " in test", 1
        )
    manifest = Manifest(
        root=str(root),
        labels=labels,
        items=items,
        seed=seed,
        test_fraction=test_fraction,
        presplit=presplit,
    )
    return Prepared(manifest, skipped + reports)


def class_counts(manifest: Manifest) -> dict[str, dict[str, int]]:
    """``{split: {label: count}}`` with every label present in every split."""
    return {
        split: {
            label: sum(1 for it in manifest.items if it.split == split and it.label == label)
            for label in manifest.labels
        }
        for split in SPLITS
    }
