"""Backbones from torchvision with the project's classification head.

A :class:`Classifier` is ``backbone`` (pretrained convolutional features + global average pool,
returning ``(N, F)``) followed by ``head``: ``linear`` (dropout -> Linear(F, n_classes)) or ``mlp``
(dropout -> Linear(F, 256) -> ReLU -> dropout -> Linear(256, n_classes)). Its ``forward`` returns
logits; export adds the temperature and the softmax.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from shared.cli import UsageError

HEAD_HIDDEN = 256


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


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature, with statistics measured on the training features.

    Backbones' pooled features differ in scale by orders of magnitude (a random-init MobileNetV2's
    are ~1e-9, ImageNet's ~1), and the head's weight decay and learning rate mean different things
    at each; standardised, one setting fits all. Identity until :meth:`fit` is called, and
    exported as it is (a Sub and a Div per image).
    """

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> None:
        """Statistics of ``features`` ``(..., F)``: every row of every view."""
        flat = features.reshape(-1, features.shape[-1]).double()
        std = flat.std(0)
        # A feature that never varies (a dead unit) is divided by a small typical scale, not 0.
        floor = float(std.mean()) * 1e-3 if float(std.mean()) > 0 else 1.0
        self.mean.copy_(flat.mean(0))
        self.std.copy_(std.clamp_min(floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def make_head(
    in_features: int, n_classes: int, kind: str = "linear", dropout: float = 0.2
) -> nn.Module:
    """The trainable classifier on pooled backbone features, which it standardises first."""
    if kind == "linear":
        return nn.Sequential(
            Standardize(in_features), nn.Dropout(dropout), nn.Linear(in_features, n_classes)
        )
    if kind == "mlp":
        return nn.Sequential(
            Standardize(in_features),
            nn.Dropout(dropout),
            nn.Linear(in_features, HEAD_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(HEAD_HIDDEN, n_classes),
        )
    raise ValueError(f"unknown head {kind!r}")


class Classifier(nn.Module):
    def __init__(
        self,
        arch: str,
        blocks: list[nn.Module],
        n_classes: int,
        head: str = "linear",
        dropout: float = 0.2,
    ):
        super().__init__()
        self.arch = arch
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_features = ARCHS[arch].features
        self.head = make_head(self.pool_features, n_classes, head, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, F)``."""
        for block in self.blocks:
            x = block(x)
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def freeze_backbone(self, unfreeze_last: int = 0) -> list[nn.Module]:
        """Freeze every feature block but the last ``unfreeze_last``; return the trainable blocks."""
        trainable = list(self.blocks)[len(self.blocks) - unfreeze_last :] if unfreeze_last else []
        for block in self.blocks:
            block.requires_grad_(any(block is t for t in trainable))
        return trainable

    def train(self, mode: bool = True) -> "Classifier":
        # Frozen blocks stay in eval mode so their BatchNorm statistics are not updated.
        super().train(mode)
        if mode:
            for block in self.blocks:
                if not any(p.requires_grad for p in block.parameters()):
                    block.eval()
        return self


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


def build_model(
    arch: str, n_classes: int, weights: str = "imagenet", head: str = "linear", dropout: float = 0.2
) -> Classifier:
    """The classifier for ``arch`` with ``weights`` in its backbone and a fresh head."""
    base = load_torchvision(arch, weights)
    return Classifier(arch, ARCHS[arch].blocks(base), n_classes, head, dropout)
