"""The split manifest: which file is in which split with which label, so a run can be reproduced.

Written by ``trainer.fit`` as ``RUN_DIR/split.json``; read by ``trainer.export`` (parity gate,
calibration) and by ``--resume``. Format::

    {"version": 1, "root": "/abs/data/root", "labels": [...], "seed": 0, "test_fraction": 0.3,
     "presplit": false,
     "items": [{"path": "Flying Birds/a.jpg", "label": "Flying Birds", "split": "train",
                "sha256": "..."}, ...]}
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from trainer.atomic import atomic_write_text

FILENAME = "split.json"


@dataclass(frozen=True)
class Item:
    path: str  # relative to the manifest root
    label: str
    split: str  # "train" or "test"
    sha256: str


@dataclass(frozen=True)
class Manifest:
    root: str
    labels: tuple[str, ...]
    items: tuple[Item, ...]
    seed: int
    test_fraction: float
    presplit: bool = False

    def split(self, name: str) -> list[tuple[Path, int]]:
        """``(absolute path, label index)`` for every item of split ``name``, in manifest order."""
        index = {label: i for i, label in enumerate(self.labels)}
        root = Path(self.root)
        return [(root / it.path, index[it.label]) for it in self.items if it.split == name]

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return json.dumps({"version": 1, **data}, indent=1, sort_keys=True)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def save(self, run_dir: str | Path) -> Path:
        return atomic_write_text(Path(run_dir) / FILENAME, self.to_json())

    @classmethod
    def load(cls, run_dir: str | Path) -> "Manifest":
        data = json.loads((Path(run_dir) / FILENAME).read_text(encoding="utf-8"))
        if data.get("version") != 1:
            raise ValueError(f"unsupported split manifest version {data.get('version')!r}")
        return cls(
            root=data["root"],
            labels=tuple(data["labels"]),
            items=tuple(Item(**it) for it in data["items"]),
            seed=int(data["seed"]),
            test_fraction=float(data["test_fraction"]),
            presplit=bool(data.get("presplit", False)),
        )
