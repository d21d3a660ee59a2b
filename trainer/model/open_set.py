""" "None of these", inside the network: the score the served graph computes beside its
probabilities, from the pooled features and the predicted class.

* **Nearest photo** (always): the cosine similarity of the image's features to the nearest
  training photo of the predicted class, minus that class's own threshold (set out of fold, so a
  class with a handful of photos is judged by its own photos, not rejected wholesale). It carries
  to kinds of things no one collected: a dog, a pizza, a person is far from every training photo.
* **Background class** (with negatives): ``1 - p(background)`` of a second head trained with the
  photos of other things as one more class, minus its threshold. It catches the near kinds the
  negatives showed (airliners, warplanes), which the nearest photo does not.

Each margin is divided by the spread of its out-of-fold scores, and the score is the smaller of
them: an image is one of the classes when ``known_score >= 0``. The numbers come from
``trainer.learning.rejection_rule``; until then the module accepts everything.
"""

import torch
from torch import nn

# What a photo of another class adds to a similarity before the maximum: it never wins.
OTHER_CLASS = -10.0


class KnownScore(nn.Module):
    def __init__(self, references: int, features: int, classes: int, background: bool):
        super().__init__()
        self.background = background
        self.register_buffer("references", torch.zeros(references, features))  # unit rows
        self.register_buffer("class_mask", torch.zeros(classes, references))  # 0 own, -10 other
        self.register_buffer("knn_threshold", torch.full((classes,), -2.0))
        self.register_buffer("knn_scale", torch.ones(()))
        if background:
            # Standardise + linear over classes + background; temperature and shift folded in.
            self.register_buffer("bg_mean", torch.zeros(features))
            self.register_buffer("bg_std", torch.ones(features))
            self.bg = nn.Linear(features, classes + 1)
            self.register_buffer("bg_threshold", torch.full((), -1.0))
            self.register_buffer("bg_scale", torch.ones(()))

    def forward(self, features: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        unit = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
        nearest = (unit @ self.references.T + self.class_mask[predicted]).max(dim=1).values
        known = (nearest - self.knn_threshold[predicted]) / self.knn_scale
        if not self.background:
            return known
        p = torch.softmax(self.bg((features - self.bg_mean) / self.bg_std), dim=1)
        margin = (1.0 - p[:, -1] - self.bg_threshold) / self.bg_scale
        return torch.minimum(known, margin)
