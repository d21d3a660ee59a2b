"""The split: a data folder scanned, grouped and split three ways, described as a manifest.

One folder (``DATA/<class>/...``) is split into train, val and test, stratified by class and
seeded; pre-split folders (``train/``, ``test/``, optionally ``val/``) keep their splits, a missing
``val/`` carved from ``train/`` the same way (``trainer.data.folders`` finds them).

Collected photo sets are full of near-copies (re-encoded, resized, mirrored frames): every file is
hashed perceptually while it is scanned, near-duplicates form groups, and a group never straddles
two splits (a copy in val or test of a training image would make those scores optimistic). Files
may sit in nested folders below a class folder; hidden files and folders are ignored.
"""

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.cli import UsageError
from trainer.data.dedup import MAX_DISTANCE, group_near_duplicates
from trainer.data.folders import discover, negative_candidates
from trainer.data.manifest import SPLITS, Item, Manifest
from trainer.data.scan import Scanned, Skipped, scan


@dataclass(frozen=True)
class Prepared:
    manifest: Manifest
    skipped: list[Skipped]


def allocate(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Images of a class of ``n`` to put in (val, test): at least one each when the class allows,
    but never the class's last training image (a class must train to be predicted at all)."""
    want_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    want_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    val = min(want_val, n - 1)
    test = min(want_test, n - 1 - val)
    return val, test


def _split_class(
    groups: list[list[Scanned]], label: str, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, list[Scanned]]:
    """Whole near-duplicate groups to train/val/test for one class, seeded."""
    groups = sorted(groups, key=lambda g: g[0].candidate.rel)
    # A string seed is hashed deterministically (SHA-512), independent of PYTHONHASHSEED.
    random.Random(f"{seed}:{label}").shuffle(groups)
    n = sum(len(g) for g in groups)
    want_val, want_test = allocate(n, val_fraction, test_fraction)
    out: dict[str, list[Scanned]] = {s: [] for s in SPLITS}
    for i, group in enumerate(groups):
        left = len(groups) - i  # groups not yet placed, this one included
        if len(out["test"]) < want_test and left > 1 + (len(out["val"]) < want_val):
            out["test"] += group
        elif len(out["val"]) < want_val and left > 1:
            out["val"] += group
        else:
            out["train"] += group
    return out


def _by_group(scanned: Sequence[Scanned], ids: Sequence[int]) -> dict[int, list[Scanned]]:
    groups: dict[int, list[Scanned]] = defaultdict(list)
    for item, gid in zip(scanned, ids, strict=True):
        groups[gid].append(item)
    return groups


def split_three_ways(
    scanned: Sequence[Scanned],
    ids: Sequence[int],
    labels: Sequence[str],
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> list[tuple[Scanned, str]]:
    """Assign every file to a split, per class, keeping each near-duplicate group whole.

    A group is split with the class of its first file (copies filed under two classes are label
    noise, but they still must not leak across splits).
    """
    per_class: dict[str, list[list[Scanned]]] = defaultdict(list)
    for group in _by_group(scanned, ids).values():
        group.sort(key=lambda s: s.candidate.rel)
        per_class[group[0].candidate.label].append(group)
    out: list[tuple[Scanned, str]] = []
    for label in labels:
        parts = _split_class(per_class[label], label, seed, val_fraction, test_fraction)
        out += [(s, split) for split in SPLITS for s in parts[split]]
    return out


def _presplit(
    scanned: Sequence[Scanned],
    ids: Sequence[int],
    labels: Sequence[str],
    seed: int,
    val_fraction: float,
) -> tuple[list[tuple[Scanned, str]], list[Skipped]]:
    """Use the folders' splits; carve val from train if absent; drop val/test copies of train."""
    assigned = [(s, s.candidate.split or "train") for s in scanned]
    if not any(split == "val" for _, split in assigned):
        train = [(s, g) for (s, split), g in zip(assigned, ids, strict=True) if split == "train"]
        carved = split_three_ways(
            [s for s, _ in train], [g for _, g in train], labels, seed, val_fraction, 0.0
        )
        assigned = carved + [(s, split) for s, split in assigned if split != "train"]
    group_of = {s.candidate.rel: g for s, g in zip(scanned, ids, strict=True)}
    # A group belongs to the first split that has one of its files (train, then val, then
    # test); its copies in a later split are leakage and are dropped there.
    owner: dict[int, tuple[str, str]] = {}
    for split in SPLITS:
        for s, where in assigned:
            if where == split:
                owner.setdefault(group_of[s.candidate.rel], (split, s.candidate.rel))
    kept, leaked = [], []
    for s, split in assigned:
        first_split, twin = owner[group_of[s.candidate.rel]]
        if first_split != split:
            how = "byte-identical to" if _same_bytes(s, twin, scanned) else "a near-duplicate of"
            leaked.append(Skipped(s.candidate.rel, f"leakage: {how} {first_split} file {twin}"))
        else:
            kept.append((s, split))
    return kept, leaked


def _same_bytes(item: Scanned, rel: str, scanned: Sequence[Scanned]) -> bool:
    return any(s.candidate.rel == rel and s.sha256 == item.sha256 for s in scanned)


def _check_training_images(labels: Sequence[str], counts: Counter[str]) -> None:
    for label in labels:
        if counts.get(label, 0) == 0:
            raise UsageError(
                f"class '{label}' has no readable training images; add images or remove the "
                "folder (skipped.csv in the run folder lists files that failed to decode)"
            )


def _notes(items: Sequence[Item], labels: Sequence[str], has_test: bool) -> list[str]:
    """Classes a split has no image of: named, so no metric silently drops them."""
    notes = []
    for split in ("val", "test") if has_test else ("val",):
        missing = [
            lb for lb in labels if not any(i.label == lb and i.split == split for i in items)
        ]
        if missing:
            notes.append(
                f"too few images for {split}: {', '.join(missing)} (no {split} image; "
                f"its {split} metrics are absent, not zero)"
            )
    return notes


def prepare_split(
    root: str | Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    duplicate_distance: int = MAX_DISTANCE,
    negatives: str | Path | None = None,
    progress: bool = True,
) -> Prepared:
    """Discover, scan, group and split ``root`` (and the ``negatives`` folder, if any); raise
    :class:`UsageError` on unusable data."""
    root = Path(root).expanduser().resolve()
    labels, candidates, presplit = discover(root)
    scanned, skipped = scan(root, candidates, progress=progress)
    neg_root = Path(negatives).expanduser().resolve() if negatives else None
    neg_scanned: list[Scanned] = []
    if neg_root is not None:
        neg_scanned, neg_skipped = scan(neg_root, negative_candidates(neg_root), progress=progress)
        skipped = skipped + [Skipped(f"negatives/{s.path}", s.reason) for s in neg_skipped]
    _check_readable(labels, scanned)
    everything = [*scanned, *neg_scanned]
    all_ids = group_near_duplicates(
        [s.phash for s in everything],
        [s.sha256 for s in everything],
        max_distance=duplicate_distance,
    )
    ids, neg_ids = all_ids[: len(scanned)], all_ids[len(scanned) :]
    if presplit:
        if any(s.candidate.split == "val" for s in scanned):
            val_fraction = 0.0  # val/ is given, nothing is carved
        assigned, leaked = _presplit(scanned, ids, labels, seed, val_fraction)
        skipped = skipped + leaked
    else:
        assigned = split_three_ways(scanned, ids, labels, seed, val_fraction, test_fraction)
    _check_training_images(
        labels, Counter(s.candidate.label for s, sp in assigned if sp == "train")
    )
    items, duplicates = _items(scanned, ids, assigned)
    has_test = any(i.split == "test" for i in items)
    neg_items, conflicts = _split_negatives(
        neg_scanned,
        neg_ids,
        set(ids),
        seed,
        val_fraction or 0.2,
        test_fraction if has_test else 0.0,
    )
    manifest = Manifest(
        root=str(root),
        labels=labels,
        items=items,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=0.0 if presplit else test_fraction,
        presplit=presplit,
        notes=tuple(_notes(items, labels, has_test)),
        duplicates=duplicates,
        negatives_root=str(neg_root) if neg_root else "",
        negatives=neg_items,
    )
    if neg_root is not None and not neg_items:
        raise UsageError(f"--negatives {neg_root}: no readable image in it")
    return Prepared(manifest, skipped + conflicts)


def _check_readable(labels: Sequence[str], scanned: Sequence[Scanned]) -> None:
    for label in labels:
        if not any(s.candidate.label == label for s in scanned):
            raise UsageError(
                f"class '{label}' has no readable images; add images or remove the folder "
                "(skipped.csv in the run folder lists files that failed to decode)"
            )


def _items(
    scanned: Sequence[Scanned], ids: Sequence[int], assigned: Sequence[tuple[Scanned, str]]
) -> tuple[tuple[Item, ...], tuple[tuple[str, ...], ...]]:
    """The manifest's items (split by split, then by path) and its near-duplicate groups."""
    group_of = {s.candidate.rel: g for s, g in zip(scanned, ids, strict=True)}
    items = tuple(
        Item(s.candidate.rel, s.candidate.label, split, s.sha256, group_of[s.candidate.rel])
        for s, split in sorted(assigned, key=lambda a: (SPLITS.index(a[1]), a[0].candidate.rel))
    )
    members: dict[int, list[str]] = defaultdict(list)
    for s in scanned:
        members[group_of[s.candidate.rel]].append(s.candidate.rel)
    duplicates = tuple(sorted(tuple(sorted(m)) for m in members.values() if len(m) > 1))
    return items, duplicates


def _split_negatives(
    scanned: Sequence[Scanned],
    ids: Sequence[int],
    class_groups: set[int],
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[tuple[Item, ...], list[Skipped]]:
    """Negatives split three ways like the classes (by kind, groups whole). A negative that is a
    copy of a class image contradicts its label and is left out."""
    conflicts = [
        Skipped(
            f"negatives/{s.candidate.rel}", "a near-duplicate of an image of one of the classes"
        )
        for s, g in zip(scanned, ids, strict=True)
        if g in class_groups
    ]
    kept = [(s, g) for s, g in zip(scanned, ids, strict=True) if g not in class_groups]
    kinds = sorted({s.candidate.label for s, _ in kept})
    assigned = split_three_ways(
        [s for s, _ in kept], [g for _, g in kept], kinds, seed, val_fraction, test_fraction
    )
    group_of = {s.candidate.rel: g for s, g in kept}
    items = tuple(
        Item(s.candidate.rel, s.candidate.label, split, s.sha256, group_of[s.candidate.rel])
        for s, split in sorted(assigned, key=lambda a: (SPLITS.index(a[1]), a[0].candidate.rel))
    )
    return items, conflicts
