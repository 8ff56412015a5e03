"""ED-ViT's fusion head: an MLP, Linear(sum D_s + K -> 256), GELU, Linear(256 -> C)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vitfleet.decompose.fusion_heads.registry import FusionHeadKind, register_fusion_head

if TYPE_CHECKING:
    from vitfleet.decompose.fusion_heads.base import FusionHead

HIDDEN_DIM = 256  # ED-ViT's MLP width, whatever the teacher's


def build(feature_dims: list[int], hidden_dim: int, num_classes: int) -> FusionHead:
    # Imported here: registering the head (at `vitfleet --help`) loads no model library.
    from torch import nn

    from vitfleet.decompose.fusion_heads.base import LinearFusionHead

    return LinearFusionHead("mlp", feature_dims, hidden_dim, num_classes, nn.GELU())


MLP_HEAD = register_fusion_head(
    FusionHeadKind(
        name="mlp",
        summary=f"ED-ViT: an MLP (Linear, GELU, Linear) {HIDDEN_DIM} wide",
        build=build,
        hidden_dim=lambda teacher_dim: HIDDEN_DIM,
    )
)
