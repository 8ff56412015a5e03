"""The decomposition-method registry: everything that differs between methods, in one record per method.

Like timm's model registry: `get_method("edvit")` returns the method's choices (how parts are cut from the
teacher, what they learn from, which fusion head joins them, its default recipe), and the pipeline, the CLI's
`--method` choices and the bench settings ask it instead of naming methods. Torch-free, so `vitfleet --help`
lists the methods without loading a model library: a method's objective is imported when a part trains. A method
names its fusion head by its name in the fusion-head registry (decompose/fusion_heads/), checked at registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator

from vitfleet.decompose.fusion_heads import get_fusion_head, known_fusion_head
from vitfleet.decompose.recipes import MethodDefaults
from vitfleet.registry import IDENTIFIER, Registry

if TYPE_CHECKING:
    from vitfleet.decompose.part_objectives import PartObjective, PartTargets
    from vitfleet.decompose.students import PartRecipe

PruneShape = Literal["width", "heads"]  # what pruning removes from the teacher (decompose/prune.py)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    prune_shape: PruneShape  # how a part is cut from the teacher
    other_class: bool  # default: an extra "other" logit trained on other parts' images
    fusion_kind: str  # a registered fusion head (decompose/fusion_heads/), the one bundle.json records
    objective: Callable[..., PartObjective]  # (model, recipe, DEKD weights) -> its training loss
    part_targets: Callable[[PartRecipe], PartTargets]  # which teacher targets the part's training reads
    defaults: MethodDefaults  # the settings `vitfleet decompose` uses when a flag is not given
    flips: bool = False  # default: parts train on randomly mirrored images

    def part_flips(self, recipe: PartRecipe) -> bool:
        return self.flips if recipe.flips is None else recipe.flips

    def fusion_hidden(self, teacher_dim: int) -> int:
        """The fusion head's hidden width for a teacher this wide: the head's own rule (decompose/fusion_heads/)."""
        return get_fusion_head(self.fusion_kind).hidden_dim(teacher_dim)


def kit_objective(name: str) -> Callable[..., PartObjective]:
    """One of the kit's objectives (decompose/part_objectives.py) by class name, imported when a part trains: a
    method's file stays torch-free, so listing the methods loads no model library."""

    def build(model: Any, recipe: Any, weights: Any) -> PartObjective:
        from vitfleet.decompose import part_objectives

        return getattr(part_objectives, name)(model, recipe, weights)

    return build


# A method names bundles and CLI choices: a plain identifier.
_METHODS: Registry[Method] = Registry("decomposition method", lambda m: m.name, IDENTIFIER, "a plain identifier")


def register_method(method: Method) -> Method:
    try:
        known_fusion_head(method.fusion_kind)
    except ValueError as exc:
        # Checked here, not when a decomposition reaches its fusion stage after the parts have trained.
        raise ValueError(f"method {method.name!r}: {exc}") from None
    return _METHODS.register(method)


get_method = _METHODS.require  # a one-sentence UserError naming the registered methods
method_names = _METHODS.names  # built-ins first (devit is the CLI's default)
known_method = _METHODS.known  # a pydantic validator's check


# A config field that takes a registered method (the bench settings): validated against the registry when read.
MethodName = Annotated[str, AfterValidator(known_method)]
