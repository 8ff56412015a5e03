"""Fusion heads: the aggregator's half of the model.

Both take the concatenated part features and a presence mask (1 = the part's
features arrived). A missing part's slice is zeroed and the mask itself is an input,
so a head trained with part dropout knows which boards are silent and degrades
instead of breaking.
"""

from __future__ import annotations

import torch
from torch import nn


class FusionHead(nn.Module):
    """kind="devit": Linear(sum D_s + K -> D_teacher) "aggregated token", then Linear(D_teacher -> C).
    kind="mlp" (ED-ViT): Linear(sum D_s + K -> hidden), GELU, Linear(hidden -> C).
    """

    def __init__(self, kind: str, feature_dims: list[int], hidden_dim: int, num_classes: int) -> None:
        super().__init__()
        if kind not in ("devit", "mlp"):
            raise ValueError(f"unknown fusion kind {kind!r}")
        self.kind = kind
        self.feature_dims = list(feature_dims)
        in_dim = sum(feature_dims) + len(feature_dims)
        self.mapper = nn.Linear(in_dim, hidden_dim)
        self.act = nn.Identity() if kind == "devit" else nn.GELU()
        self.classifier = nn.Linear(hidden_dim, num_classes)
        index = torch.repeat_interleave(torch.arange(len(feature_dims)), torch.tensor(feature_dims))
        self.register_buffer("slot_of_feature", index, persistent=False)

    def token(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The aggregated token (DeViT matches it to the teacher's CLS token)."""
        masked = features * mask[:, self.slot_of_feature]
        return self.act(self.mapper(torch.cat([masked, mask], dim=1)))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.token(features, mask))


class PartFeatures(nn.Module):
    """A sub-ViT as deployed: image -> final CLS token after the last norm (what a board sends)."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_head(self.vit.forward_features(x), pre_logits=True)
