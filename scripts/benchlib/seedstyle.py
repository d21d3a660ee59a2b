"""The baseline: the seed's PyTorch inference (torchvision MobileNetV2 with the project's head).

``torchvision.models.mobilenet_v2`` whose ``classifier`` is replaced by the same head as
:class:`trainer.model.Classifier` (dropout -> Linear(1280, 256) -> ReLU -> dropout -> Linear), a
state dict loaded with ``torch.load``, torchvision's eval transform on a PIL image, eager forward.
With :func:`seed_state_dict` it computes exactly what the exported ONNX model computes.
"""

import io
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms

from shared.spec import DEFAULT_SPEC, PreprocessSpec
from trainer.model import HEAD_HIDDEN, Classifier

_LAST_LINEAR = "classifier.4.bias"


def seed_state_dict(model: Classifier) -> dict[str, torch.Tensor]:
    """``model``'s weights under torchvision's names (``blocks.i`` -> ``features.i``, head ->
    ``classifier``): the Classifier's blocks are torchvision's ``features``, in order."""
    renamed = {}
    for key, value in model.state_dict().items():
        prefix, _, rest = key.partition(".")
        renamed[{"blocks": "features", "head": "classifier"}[prefix] + "." + rest] = value
    return renamed


def load_seed_model(state_path: str | Path) -> nn.Module:
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    model = torchvision.models.mobilenet_v2(weights=None)
    model.classifier = nn.Sequential(
        nn.Dropout(0.2),
        nn.Linear(model.last_channel, HEAD_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Dropout(0.2),
        nn.Linear(HEAD_HIDDEN, state[_LAST_LINEAR].shape[0]),
    )
    model.load_state_dict(state)
    return model.eval()


def seed_transform(spec: PreprocessSpec = DEFAULT_SPEC) -> transforms.Compose:
    """The seed's eval transform (the one ``shared.preprocess`` reproduces)."""
    from trainer.augment import torchvision_eval

    return torchvision_eval(spec)


@torch.no_grad()
def predict(model: nn.Module, transform: transforms.Compose, data: bytes) -> torch.Tensor:
    """Encoded image -> class probabilities ``(classes,)``, the seed's way."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return torch.softmax(model(transform(image).unsqueeze(0)), dim=1)[0]
