"""The project's classifier: a torchvision backbone's feature blocks and a new head.

A :class:`Classifier` is ``blocks`` (convolutional features + global average pool, returning
``(N, F)``) followed by ``head``: ``linear`` (standardise -> dropout -> Linear(F, n_classes)) or
``mlp`` (standardise -> dropout -> Linear(F, 256) -> ReLU -> dropout -> Linear(256, n_classes)).
Its ``forward`` returns logits; the export adds the temperature and the softmax.
"""

import torch
from torch import nn

from trainer.model.backbones import ARCHS, load_torchvision
from trainer.model.open_set import KnownScore

HEAD_HIDDEN = 256


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature, with statistics measured on the training features.

    Backbones' pooled features differ in scale by orders of magnitude (a random-init MobileNetV2's
    are ~1e-9, ImageNet's ~1), and the head's weight decay and learning rate mean different things
    at each; standardised, one setting fits all. Identity until the solved head sets it (its
    statistics come from the cached features: ``trainer.learning.linear_solver.standardiser``),
    and exported as it is (a Sub and a Div per image).
    """

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @torch.no_grad()
    def set(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

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
    """``mirror``: in eval mode, the features of an image are the mean of its own and its mirror
    image's (one backbone pass over a batch of both), as the served graph computes them.
    ``known_score`` is the "none of these" module, when the regime built one."""

    def __init__(
        self,
        arch: str,
        blocks: list[nn.Module],
        n_classes: int,
        head: str = "linear",
        dropout: float = 0.2,
        mirror: bool = False,
    ):
        super().__init__()
        self.arch = arch
        self.mirror = mirror
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_features = ARCHS[arch].features
        self.head = make_head(self.pool_features, n_classes, head, dropout)
        self.known_score: KnownScore | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, F)`` of exactly these images."""
        for block in self.blocks:
            x = block(x)
        return torch.flatten(self.pool(x), 1)

    def served_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features the head reads: with ``mirror`` (in eval mode), image and mirror averaged."""
        if not self.mirror or self.training:
            return self.features(x)
        both = self.features(torch.cat([x, torch.flip(x, dims=[3])]))
        n = x.shape[0]
        return (both[:n] + both[n:]) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.served_features(x))

    def add_known_score(self, references: int, classes: int, background: bool) -> KnownScore:
        self.known_score = KnownScore(references, self.pool_features, classes, background)
        return self.known_score

    def load_trained(self, state: dict[str, torch.Tensor]) -> "Classifier":
        """Load a trained state, the known-score module included when it has one."""
        if "known_score.references" in state and self.known_score is None:
            refs, classes = (
                state["known_score.class_mask"].shape[1],
                state["known_score.class_mask"].shape[0],
            )
            self.add_known_score(refs, classes, "known_score.bg.weight" in state)
        self.load_state_dict(state)
        return self

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


def build_model(
    arch: str,
    n_classes: int,
    weights: str = "imagenet",
    head: str = "linear",
    dropout: float = 0.2,
    mirror: bool = False,
) -> Classifier:
    """The classifier for ``arch`` with ``weights`` in its backbone and a fresh head."""
    base = load_torchvision(arch, weights)
    return Classifier(arch, ARCHS[arch].blocks(base), n_classes, head, dropout, mirror)
