"""The decomposition-method registry: everything that differs between methods, in one record per method.

Like timm's model registry: `get_method("edvit")` returns the method's choices (how parts are cut from the
teacher, what they learn from, which fusion head joins them, its default recipe), and the pipeline, the CLI's
`--method` choices and the bench settings ask it instead of naming methods. Torch-free, so `vitfleet --help`
lists the methods without loading a model library: a method's objective is imported when a part trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vitfleet.decompose.recipes import MethodDefaults
from vitfleet.errors import UserError

if TYPE_CHECKING:
    from vitfleet.decompose.part_objectives import PartObjective, PartTargets
    from vitfleet.decompose.students import PartRecipe

PruneShape = Literal["width", "heads"]  # what pruning removes from the teacher (decompose/prune.py)
FusionKind = Literal["devit", "mlp"]  # the fusion head's architecture (decompose/bundle.py FusionSpec)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    prune_shape: PruneShape  # how a part is cut from the teacher
    other_class: bool  # default: an extra "other" logit trained on other parts' images
    fusion_kind: FusionKind
    objective: Callable[..., PartObjective]  # (model, recipe, DEKD weights) -> its training loss
    part_targets: Callable[[PartRecipe], PartTargets]  # which teacher targets the part's training reads
    defaults: MethodDefaults  # the settings `vitfleet decompose` uses when a flag is not given
    flips: bool = False  # default: parts train on randomly mirrored images

    def part_flips(self, recipe: PartRecipe) -> bool:
        return self.flips if recipe.flips is None else recipe.flips

    def fusion_hidden(self, teacher_dim: int) -> int:
        """DeViT's head maps to the teacher's CLS width (matched by MSE); the MLP head is 256 wide."""
        return teacher_dim if self.fusion_kind == "devit" else 256


def kit_objective(name: str) -> Callable[..., PartObjective]:
    """One of the kit's objectives (decompose/part_objectives.py) by class name, imported when a part trains: a
    method's file stays torch-free, so listing the methods loads no model library."""

    def build(model: Any, recipe: Any, weights: Any) -> PartObjective:
        from vitfleet.decompose import part_objectives

        return getattr(part_objectives, name)(model, recipe, weights)

    return build


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    if not method.name.isidentifier():
        raise ValueError(f"a method name is a plain identifier (it names bundles and CLI choices), got {method.name!r}")
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise UserError(f"unknown decomposition method {name!r}; use one of {', '.join(method_names())}")
    return _METHODS[name]


def method_names() -> list[str]:
    """Registered methods, built-ins first (devit is the CLI's default)."""
    return list(_METHODS)


def known_method(name: Any) -> str:
    """A pydantic validator's check: the name of a registered method."""
    if name not in _METHODS:
        raise ValueError(f"unknown decomposition method {name!r}; use one of {', '.join(method_names())}")
    return name
