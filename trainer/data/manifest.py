"""The split manifest: which file is in which split with which label, so a run can be reproduced.

Written by ``trainer.fit`` as ``RUN_DIR/split.json``; read by ``trainer.export`` (calibration,
the val gates, the final test score) and by ``--resume``. Format::

    {"version": 2, "root": "/abs/data/root", "labels": [...], "seed": 0, "val_fraction": 0.2,
     "test_fraction": 0.2, "presplit": false, "notes": ["..."],
     "items": [{"path": "Flying Birds/a.jpg", "label": "Flying Birds", "split": "train",
                "sha256": "...", "group": 12}, ...],
     "duplicates": [["Flying Birds/a.jpg", "Flying Birds/a_copy.png"], ...]}

``group`` ties near-duplicates together (one split per group); ``duplicates`` lists every group
with more than one file, for people. With ``--negatives`` (photos of none of the classes),
``negatives_root`` and ``negatives`` describe them the same way, their ``label`` being the kind
(the sub-folder name, or ``"other"``).
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trainer.common.files import atomic_write_text

FILENAME = "split.json"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    path: str  # relative to the manifest root
    label: str
    split: str  # "train", "val" or "test"
    sha256: str
    group: int = -1  # near-duplicate group id; -1: none recorded


@dataclass(frozen=True)
class Manifest:
    root: str
    labels: tuple[str, ...]
    items: tuple[Item, ...]
    seed: int
    val_fraction: float
    test_fraction: float
    presplit: bool = False
    notes: tuple[str, ...] = ()  # classes too small for a split, and the like
    duplicates: tuple[tuple[str, ...], ...] = field(default=())
    negatives_root: str = ""
    negatives: tuple[Item, ...] = ()

    def split(self, name: str) -> list[tuple[Path, int]]:
        """``(absolute path, label index)`` for every item of split ``name``, in manifest order."""
        index = {label: i for i, label in enumerate(self.labels)}
        root = Path(self.root)
        return [(root / it.path, index[it.label]) for it in self.items if it.split == name]

    def negative_split(self, name: str) -> list[Path]:
        """Absolute paths of the negatives in split ``name``, in manifest order."""
        root = Path(self.negatives_root)
        return [root / it.path for it in self.negatives if it.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {label: count}}`` with every label present in every split."""
        return {
            split: {
                label: sum(1 for it in self.items if it.split == split and it.label == label)
                for label in self.labels
            }
            for split in SPLITS
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["notes"] = list(self.notes)
        data["duplicates"] = [list(g) for g in self.duplicates]
        if not self.negatives:  # an in-class-only manifest keeps the form (and hash) it had
            del data["negatives"], data["negatives_root"]
        return json.dumps({"version": 2, **data}, indent=1, sort_keys=True)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def save(self, run_dir: str | Path) -> Path:
        return atomic_write_text(Path(run_dir) / FILENAME, self.to_json())

    @classmethod
    def load(cls, run_dir: str | Path) -> "Manifest":
        data = json.loads((Path(run_dir) / FILENAME).read_text(encoding="utf-8"))
        if data.get("version") != 2:
            raise ValueError(f"unsupported split manifest version {data.get('version')!r}")
        return cls(
            root=data["root"],
            labels=tuple(data["labels"]),
            items=tuple(Item(**it) for it in data["items"]),
            seed=int(data["seed"]),
            val_fraction=float(data["val_fraction"]),
            test_fraction=float(data["test_fraction"]),
            presplit=bool(data.get("presplit", False)),
            notes=tuple(data.get("notes", ())),
            duplicates=tuple(tuple(g) for g in data.get("duplicates", ())),
            negatives_root=data.get("negatives_root", ""),
            negatives=tuple(Item(**it) for it in data.get("negatives", ())),
        )
