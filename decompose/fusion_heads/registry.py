"""The fusion-head registry: one record per head architecture the aggregator can run.

Like the method registry (decompose/methods/registry.py): `get_fusion_head("mlp")` returns how to build the head and
how wide it is, and the methods, the pipeline and bundle.json's `fusion.kind` ask it instead of naming heads. A head
is one module that calls `register_fusion_head` (the kit's own: decompose/fusion_heads/devit.py and mlp.py); one from
outside the kit is loaded as a plugin (vitfleet/plugins.py). Torch-free, so the method registry validates a method's
head and `vitfleet --help` lists the methods without loading a model library: a head's `build` imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vitfleet.registry import IDENTIFIER, Registry

if TYPE_CHECKING:
    from vitfleet.decompose.fusion_heads.base import FusionHead


@dataclass(frozen=True)
class FusionHeadKind:
    name: str  # what bundle.json's fusion.kind and a method's fusion_kind say
    summary: str
    # (feature_dims, hidden_dim, num_classes) -> an untrained head (a FusionHead whose `kind` is `name`)
    build: Callable[[list[int], int, int], FusionHead]
    hidden_dim: Callable[[int], int]  # the teacher's embedding width -> the head's hidden width
    # Training also pulls the head's token toward the teacher's CLS token (MSE), when the teacher's targets are
    # there; `hidden_dim` must then give the teacher's width.
    matches_teacher_cls: bool = False


# bundle.json records a head's name: a plain identifier.
_HEADS: Registry[FusionHeadKind] = Registry("fusion head", lambda k: k.name, IDENTIFIER, "a plain identifier")


register_fusion_head = _HEADS.register
get_fusion_head = _HEADS.require  # a one-sentence UserError naming the registered heads
fusion_head_names = _HEADS.names  # built-ins first
known_fusion_head = _HEADS.known  # a pydantic validator's check
