"""What is in a data folder: class folders, their files, and a negatives folder's kinds.

Layouts (ImageFolder style, class names and their order from the sorted folder names):

* ``DATA/<class>/...``: one folder, which the trainer splits into train, val and test.
* ``DATA/train/<class>/...`` and ``DATA/test/<class>/...``, optionally ``DATA/val/<class>/...``:
  already split.

Files may sit in nested folders below a class folder; hidden files and folders are ignored
everywhere. A negatives folder (photos of none of the classes) may hold files directly or in
sub-folders, each sub-folder a *kind* named in the reports.
"""

from collections.abc import Sequence
from pathlib import Path

from shared.cli import UsageError
from trainer.data.manifest import SPLITS
from trainer.data.scan import Candidate

NEGATIVE_KIND = "other"  # the kind of a negative that sits directly in the negatives folder


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones (and those in hidden folders) left out, sorted."""
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
    top = {p.name for p in visible_dirs(root)}
    presplit = {"train", "test"} <= top
    if presplit:
        labels = tuple(p.name for p in visible_dirs(root / "train"))
        splits = [s for s in SPLITS if (root / s).is_dir()]
        for split in splits:
            extra = sorted({p.name for p in visible_dirs(root / split)} - set(labels))
            if extra:
                raise UsageError(
                    f"{root / split} has classes missing from train/: {extra}; "
                    "every split needs the class folders of train/"
                )
        folders = [(split, label, root / split / label) for split in splits for label in labels]
    else:
        labels = tuple(sorted(top))
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
        for path in files_under(folder)
    ]
    return labels, candidates, presplit


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def negative_kind(rel: Path) -> str:
    """The kind of a negative at ``rel`` (relative to the negatives folder): its first folder."""
    return rel.parts[0] if len(rel.parts) > 1 else NEGATIVE_KIND


def negative_candidates(root: Path) -> list[Candidate]:
    """Every file under the negatives folder, labelled with its kind (for the report)."""
    if not root.is_dir():
        raise UsageError(f"--negatives {root}: no such folder (photos of none of the classes)")
    return [
        Candidate(path.relative_to(root).as_posix(), negative_kind(path.relative_to(root)))
        for path in files_under(root)
    ]


def collect_items(data_dir: Path, labels: Sequence[str]) -> list[tuple[Path, int]]:
    """``(file, label index)`` for every file under the class folders of ``data_dir``."""
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise UsageError(
            f"data folder {data_dir} {what}; pass a folder with one sub-folder per class"
        )
    folders = [p for p in _visible(data_dir) if p.is_dir()]
    if not folders:
        raise UsageError(
            f"{data_dir} has no class folders; it needs one sub-folder per class named as the "
            f"model's labels {list(labels)}"
        )
    unknown = [p.name for p in folders if p.name not in labels]
    if unknown:
        hint = (
            f"; for a split dataset pass one split, e.g. {data_dir / unknown[0]}"
            if set(unknown) & {"train", "val", "test"}
            else ""
        )
        raise UsageError(
            f"folder(s) {unknown} in {data_dir} are not labels of the model "
            f"{list(labels)}; rename or remove them{hint}"
        )
    items: list[tuple[Path, int]] = []
    for folder in folders:
        files = files_under(folder)
        if not files:
            raise UsageError(
                f"class folder {folder} is empty; add images or remove it (a label with no "
                "folder is reported as absent)"
            )
        items += [(path, labels.index(folder.name)) for path in files]
    return items


def collect_negatives(folder: Path) -> list[Path]:
    """Every file under a negatives folder (photos of none of the classes)."""
    if not folder.is_dir():
        raise UsageError(f"--negatives {folder}: no such folder (photos of none of the classes)")
    files = files_under(folder)
    if not files:
        raise UsageError(f"--negatives {folder} holds no files")
    return files
