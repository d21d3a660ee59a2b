"""Scan a dataset before training: undecodable files are skipped (with the reason), and files
byte-identical across train and test are reported as leakage and dropped from test.

Every file goes through ``shared.decode``, exactly as training will read it, so a file that passes
the scan cannot fail later.
"""

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from shared.decode import DecodeError, decode
from trainer.atomic import atomic_write_text


@dataclass(frozen=True)
class Candidate:
    """A file found in the data folder: path relative to the root, class label, presplit split."""

    rel: str
    label: str
    split: str | None = None


@dataclass(frozen=True)
class Scanned:
    candidate: Candidate
    sha256: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def check_file(path: Path) -> tuple[str | None, str | None]:
    """``(sha256, None)`` for a file ``shared.decode`` accepts, else ``(None, reason)``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        decode(data)
    except DecodeError as exc:
        return None, exc.message
    return hashlib.sha256(data).hexdigest(), None


def scan(
    root: Path, candidates: Sequence[Candidate], *, progress: bool = True
) -> tuple[list[Scanned], list[Skipped]]:
    """Decode every candidate (in threads: Pillow releases the GIL while decoding)."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            tqdm(
                pool.map(lambda c: check_file(root / c.rel), candidates),
                total=len(candidates),
                desc="scan",
                unit="img",
                disable=None if progress else True,
                leave=False,
            )
        )
    scanned: list[Scanned] = []
    skipped: list[Skipped] = []
    for candidate, (digest, reason) in zip(candidates, results, strict=True):
        if digest is None:
            skipped.append(Skipped(candidate.rel, reason or "unknown"))
        else:
            scanned.append(Scanned(candidate, digest))
    return scanned, skipped


def split_leakage(
    train: Iterable[tuple[str, str]], test: Iterable[tuple[str, str]]
) -> tuple[set[str], list[Skipped]]:
    """Test files (``(path, sha256)``) whose bytes also appear in train: their paths and reports."""
    first_train: dict[str, str] = {}
    for path, digest in train:
        first_train.setdefault(digest, path)
    leaked: set[str] = set()
    reports: list[Skipped] = []
    for path, digest in test:
        if digest in first_train:
            leaked.add(path)
            reports.append(
                Skipped(path, f"leakage: byte-identical to train file {first_train[digest]}")
            )
    return leaked, reports


def skipped_csv(skipped: Sequence[Skipped]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows((s.path, s.reason) for s in skipped)
    return buffer.getvalue()


def write_skipped(path: Path, skipped: Sequence[Skipped]) -> Path:
    return atomic_write_text(path, skipped_csv(skipped))
