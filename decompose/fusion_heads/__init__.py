"""Fusion heads: the registry and the built-in ones. A new head is one module that calls `register_fusion_head`
(see the README's "Extending the kit"); outside the kit, load it as a plugin (vitfleet/plugins.py). The modules
imported here are torch-free; a head's module (decompose/fusion_heads/base.py) loads when a head is built.
"""

from vitfleet.decompose.fusion_heads import devit, mlp  # noqa: F401 - the built-ins register themselves
from vitfleet.decompose.fusion_heads.registry import (
    FusionHeadKind,
    fusion_head_names,
    get_fusion_head,
    known_fusion_head,
    register_fusion_head,
)

__all__ = ["FusionHeadKind", "fusion_head_names", "get_fusion_head", "known_fusion_head", "register_fusion_head"]
