"""What every fusion head is: the aggregator's half of the model, and the shared masking of a silent part.

A head takes the concatenated part features and a presence mask (1 = the part's features arrived). A missing
part's slice is zeroed and the mask itself is an input, so a head trained with part dropout knows which boards
are silent and degrades instead of breaking. The masking lives here, once, so every registered head (the kit's
and a plugin's) treats a silent board the same way the aggregator reports it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class FusionHead(nn.Module, ABC):
    """features (N, sum D_s) + mask (N, K) -> logits (N, C), as `classifier(token(features, mask))`.

    Training reads the two halves apart: `token` is what DeViT's recipe matches to the teacher's CLS token, and
    `classifier` turns it into logits. `kind` is the registered name (decompose/fusion_heads/registry.py) that
    bundle.json records, so a bundle rebuilds the same head.
    """

    classifier: nn.Module

    def __init__(self, kind: str, feature_dims: list[int]) -> None:
        super().__init__()
        self.kind = kind
        self.feature_dims = list(feature_dims)
        index = torch.repeat_interleave(torch.arange(len(feature_dims)), torch.tensor(feature_dims))
        # Not persistent: it follows from feature_dims, which bundle.json already records.
        self.register_buffer("slot_of_feature", index, persistent=False)

    @property
    def input_dim(self) -> int:
        """Width of `masked_input`: every part's features, then one presence flag per part."""
        return sum(self.feature_dims) + len(self.feature_dims)

    def masked_input(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Missing parts' slices zeroed, the mask appended."""
        masked = features * mask[:, self.slot_of_feature]
        return torch.cat([masked, mask], dim=1)

    @abstractmethod
    def token(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The aggregated token the classifier reads."""

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.token(features, mask))


class LinearFusionHead(FusionHead):
    """Linear(sum D_s + K -> hidden), an activation, Linear(hidden -> C): both built-in heads, which differ only
    in the activation. The attribute names (`mapper`, `classifier`) are the state-dict keys of every bundle."""

    def __init__(
        self, kind: str, feature_dims: list[int], hidden_dim: int, num_classes: int, activation: nn.Module
    ) -> None:
        super().__init__(kind, feature_dims)
        # Created in this order (mapper, then classifier) so a seeded run initialises them as it always has.
        self.mapper = nn.Linear(self.input_dim, hidden_dim)
        self.act = activation
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def token(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.act(self.mapper(self.masked_input(features, mask)))
