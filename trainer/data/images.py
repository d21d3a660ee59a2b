"""A torch Dataset over manifest entries; every image enters through ``shared.decode``."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.decode import decode
from trainer.data.augment import Transform


def load_rgb(path: str | Path, min_short_side: int = 256) -> np.ndarray:
    """Read a file's bytes and decode them exactly as the API will.

    The API and the exporter's parity gate decode with ``min_short_side=spec.resize`` (JPEG draft
    scaling depends on it), so callers pass the spec's resize to see the same pixels.
    """
    return decode(Path(path).read_bytes(), min_short_side=min_short_side)


class ImageDataset(Dataset):
    def __init__(
        self, items: Sequence[tuple[Path, int]], transform: Transform, min_short_side: int
    ):
        self.items = list(items)
        self.transform = transform
        self.min_short_side = min_short_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        return self.transform(load_rgb(path, self.min_short_side)), label

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.items]
