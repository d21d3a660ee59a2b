"""The backbones a classifier can start from: torchvision models, their feature blocks, and their
weights (torchvision's ImageNet weights API, random init, or a state-dict file)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from shared.cli import UsageError


class WeightsError(UsageError):
    """Pretrained weights could not be obtained or do not fit the architecture."""


@dataclass(frozen=True)
class Arch:
    name: str
    features: int
    # Splits a torchvision model into (ordered feature blocks, modules after them up to pooling).
    blocks: Callable[[nn.Module], list[nn.Module]]


def _mobilenet_blocks(model: nn.Module) -> list[nn.Module]:
    return list(model.features)


def _shufflenet_blocks(model: nn.Module) -> list[nn.Module]:
    return [model.conv1, model.maxpool, model.stage2, model.stage3, model.stage4, model.conv5]


ARCHS: dict[str, Arch] = {
    "mobilenet_v2": Arch("mobilenet_v2", 1280, _mobilenet_blocks),
    "mobilenet_v3_small": Arch("mobilenet_v3_small", 576, _mobilenet_blocks),
    "mobilenet_v3_large": Arch("mobilenet_v3_large", 960, _mobilenet_blocks),
    "shufflenet_v2_x0_5": Arch("shufflenet_v2_x0_5", 1024, _shufflenet_blocks),
    "shufflenet_v2_x1_0": Arch("shufflenet_v2_x1_0", 1024, _shufflenet_blocks),
}


def load_torchvision(arch: str, weights: str) -> nn.Module:
    """A torchvision model: ``"imagenet"`` (weights API), ``"none"`` (random), or a state-dict path."""
    if arch not in ARCHS:
        raise WeightsError(f"unknown --arch {arch!r}; choose from {', '.join(ARCHS)}")
    if weights == "none":
        return torchvision.models.get_model(arch, weights=None)
    if weights == "imagenet":
        try:
            return torchvision.models.get_model(arch, weights="DEFAULT")
        except Exception as exc:  # noqa: BLE001 - network, cache and hash errors all mean "not here"
            raise WeightsError(
                f"could not fetch ImageNet weights for {arch} ({type(exc).__name__}: {exc}). "
                "Offline? Pass --weights PATH (a torchvision state dict) or --weights none."
            ) from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"--weights {weights}: no such file (use imagenet, none, or a path)")
    model = torchvision.models.get_model(arch, weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors: the file is not a state dict
        raise WeightsError(f"--weights {weights}: not a readable state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"--weights {weights} does not fit {arch}: {str(exc)[:300]}") from None
    return model
