"""A sub-ViT as a board runs it: the module whose output is what the board sends to the fusion head."""

from __future__ import annotations

import torch
from torch import nn


class PartFeatures(nn.Module):
    """A sub-ViT as deployed: image -> final CLS token after the last norm (what a board sends)."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_head(self.vit.forward_features(x), pre_logits=True)
