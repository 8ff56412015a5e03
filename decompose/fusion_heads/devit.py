"""DeViT's fusion head: Linear(sum D_s + K -> D_teacher), the "aggregated token", then Linear(D_teacher -> C).

No activation between them: the token is matched to the teacher's CLS token (MSE), so it is as wide as the teacher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vitfleet.decompose.fusion_heads.registry import FusionHeadKind, register_fusion_head

if TYPE_CHECKING:
    from vitfleet.decompose.fusion_heads.base import FusionHead


def build(feature_dims: list[int], hidden_dim: int, num_classes: int) -> FusionHead:
    # Imported here: registering the head (at `vitfleet --help`) loads no model library.
    from torch import nn

    from vitfleet.decompose.fusion_heads.base import LinearFusionHead

    return LinearFusionHead("devit", feature_dims, hidden_dim, num_classes, nn.Identity())


DEVIT_HEAD = register_fusion_head(
    FusionHeadKind(
        name="devit",
        summary="DeViT: a linear aggregated token as wide as the teacher's CLS (matched to it), then a linear classifier",
        build=build,
        hidden_dim=lambda teacher_dim: teacher_dim,
        matches_teacher_cls=True,
    )
)
