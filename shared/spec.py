"""The preprocessing spec: the one object that says how pixels become network input.

The trainer's eval transform, the numpy preprocessing used by the API, and the metadata written
into the exported ONNX model are all derived from a :class:`PreprocessSpec`.
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SpecError(ValueError):
    """A preprocessing spec that is malformed or that this code cannot honour."""


@dataclass(frozen=True)
class PreprocessSpec:
    """Resize the shorter side to ``resize`` (Pillow bilinear), center-crop ``crop``, normalise."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Pillow's antialiased BILINEAR (triangle filter); the only filter the numpy code implements.
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolation != "bilinear":
            raise SpecError(f"unsupported interpolation {self.interpolation!r}; only 'bilinear'")
        if not (0 < self.crop <= self.resize):
            raise SpecError(f"need 0 < crop <= resize, got crop={self.crop} resize={self.resize}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise SpecError("mean and std need three values each, std positive")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one preprocessed image, channels first."""
        return (3, self.crop, self.crop)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreprocessSpec":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"unknown preprocessing fields: {sorted(unknown)}")
        try:
            return cls(
                resize=int(data.get("resize", cls.resize)),
                crop=int(data.get("crop", cls.crop)),
                mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
                std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
                interpolation=str(data.get("interpolation", "bilinear")),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(f"malformed preprocessing spec: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> "PreprocessSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"preprocessing spec is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError("preprocessing spec must be a JSON object")
        return cls.from_dict(data)


DEFAULT_SPEC = PreprocessSpec()
