"""Images as the network sees them: decoded through ``shared.decode`` (as the API decodes them),
then the training augmentation or the shared eval contract, in a torch Dataset.

Training: RandomResizedCrop(resize) -> RandomRotation(+-deg) -> ColorJitter -> RandomHorizontalFlip
-> CenterCrop(crop) -> ToTensor -> Normalize(spec), each step switchable by its own option. Eval is
exactly ``shared.preprocess`` (the numpy contract the API uses), converted to a tensor.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as tv

from shared.decode import decode
from shared.preprocess import preprocess
from shared.spec import PreprocessSpec

Transform = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class AugmentOptions:
    crop_scale: float = 0.08  # RandomResizedCrop's smallest area fraction; 1.0 disables it
    rotation: float = 15.0  # degrees either way; 0 disables
    color_jitter: float = 0.2  # brightness/contrast/saturation strength; 0 disables
    hflip: bool = True

    def describe(self) -> str:
        parts = [
            f"random resized crop (scale {self.crop_scale:g}-1)" if self.crop_scale < 1 else "",
            f"rotation ±{self.rotation:g}°" if self.rotation else "",
            f"colour jitter {self.color_jitter:g}" if self.color_jitter else "",
            "horizontal flip" if self.hflip else "",
        ]
        return ", ".join(p for p in parts if p) or "none"


NO_AUGMENT = AugmentOptions(crop_scale=1.0, rotation=0.0, color_jitter=0.0, hflip=False)


def train_transform(spec: PreprocessSpec, options: AugmentOptions) -> Transform:
    steps: list[Callable] = []
    if options.crop_scale < 1.0:
        steps.append(tv.RandomResizedCrop(spec.resize, scale=(options.crop_scale, 1.0)))
    else:
        steps.append(tv.Resize(spec.resize))
    if options.rotation:
        steps.append(tv.RandomRotation(options.rotation))
    if options.color_jitter:
        s = options.color_jitter
        steps.append(tv.ColorJitter(brightness=s, contrast=s, saturation=s))
    if options.hflip:
        steps.append(tv.RandomHorizontalFlip())
    steps += [tv.CenterCrop(spec.crop), tv.ToTensor(), tv.Normalize(spec.mean, spec.std)]
    pipeline = tv.Compose(steps)

    def apply(rgb: np.ndarray) -> torch.Tensor:
        return pipeline(Image.fromarray(rgb))

    return apply


def eval_transform(spec: PreprocessSpec) -> Transform:
    def apply(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(preprocess(rgb, spec)[0])

    return apply


def mirrored_eval_transform(spec: PreprocessSpec) -> Transform:
    """The served tensor, flipped left to right: the mirror image the served graph also sees."""
    served = eval_transform(spec)

    def apply(rgb: np.ndarray) -> torch.Tensor:
        return torch.flip(served(rgb), dims=[2])

    return apply


def torchvision_eval(spec: PreprocessSpec) -> tv.Compose:
    """torchvision's ``Resize -> CenterCrop -> ToTensor -> Normalize`` on PIL images: what
    ``shared.preprocess`` reproduces bit for bit (the parity tests and benchmarks compare to it)."""
    return tv.Compose(
        [
            tv.Resize(spec.resize),
            tv.CenterCrop(spec.crop),
            tv.ToTensor(),
            tv.Normalize(spec.mean, spec.std),
        ]
    )


def denormalize(batch: torch.Tensor, spec: PreprocessSpec) -> np.ndarray:
    """Normalised ``(N, 3, H, W)`` -> uint8 ``(N, H, W, 3)`` for pictures of what the network saw."""
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    pixels = (batch.float() * std + mean).clamp(0, 1) * 255
    return pixels.round().byte().permute(0, 2, 3, 1).numpy()


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
