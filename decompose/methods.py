"""The decomposition methods as strategies: everything that differs between DeViT and ED-ViT, in one place.

A registry like timm's model registry: `get_method("edvit")` returns the method's choices (how parts are cut
from the teacher, what they learn from, which fusion head joins them), and the pipeline asks it instead of
testing `method ==` at every stage. A third method registers itself the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from vitfleet.decompose.dekd import DekdWeights, QKVTap, dekd_loss, middle_layer
from vitfleet.decompose.prune import PruneShape
from vitfleet.decompose.distillation import soft_kd_loss
from vitfleet.decompose.students import PartRecipe, SubsetData, mirrored_batch
from vitfleet.decompose.training import augment, forward_precision
from vitfleet.errors import UserError

PartTargets = Literal["dekd", "soft", "none"]


class PartObjective(Protocol):
    """One training step's loss for a part; `close` releases hooks."""

    def loss(self, model: nn.Module, data: SubsetData, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor: ...

    def close(self) -> None: ...


class DekdObjective:
    """DeViT: hard-label KD + the q/k/v relation KL at the middle layer, on the pixels the teacher's targets were
    computed on: the un-augmented images, and with flips their mirrored copies with the teacher's own targets."""

    def __init__(self, model: nn.Module, recipe: PartRecipe, weights: DekdWeights) -> None:
        self.depth = len(model.blocks)
        self.tap = QKVTap(model, middle_layer(self.depth))
        self.recipe, self.weights = recipe, weights

    def loss(self, model: nn.Module, data: SubsetData, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        device = next(model.parameters()).device
        assert data.teacher_local is not None and data.teacher_rel is not None
        if self.recipe.flips:
            x, teacher_labels, teacher_rel = mirrored_batch(data, idx, gen)
        else:
            x, teacher_labels, teacher_rel = data.x[idx], data.teacher_local[idx], data.teacher_rel[idx]
        with forward_precision(device, self.recipe.precision):
            logits = model(x.to(device)).float()
        return dekd_loss(logits, data.y_local[idx].to(device), teacher_labels.to(device),
                         teacher_rel.to(device).float(), self.tap.relations(), self.depth, self.weights)["total"]

    def close(self) -> None:
        self.tap.remove()


class LabelObjective:
    """ED-ViT: label cross-entropy (smoothed) on augmented images, optionally with the teacher's soft targets.

    The soft targets are the teacher's on the un-augmented image: flips keep the class and, on these data, the
    teacher's own flip-trained view of it."""

    def __init__(self, model: nn.Module, recipe: PartRecipe, weights: DekdWeights) -> None:
        self.recipe = recipe

    def loss(self, model: nn.Module, data: SubsetData, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        device = next(model.parameters()).device
        r = self.recipe
        with forward_precision(device, r.precision):
            logits = model(augment(data.x[idx].to(device), gen, pad=r.translate_pixels, flip=bool(r.flips))).float()
        loss = F.cross_entropy(logits, data.y_local[idx].to(device), label_smoothing=0.1)
        if r.kd_temperature > 0 and data.teacher_soft is not None:
            kd = soft_kd_loss(logits, data.teacher_soft[idx].to(device).float(), r.kd_temperature)
            loss = (1 - r.kd_alpha) * loss + r.kd_alpha * kd
        return loss

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    prune_shape: PruneShape                 # how a part is cut from the teacher
    other_class: bool                       # default: an extra "other" logit trained on other parts' images
    fusion_kind: Literal["devit", "mlp"]
    objective: Callable[[nn.Module, PartRecipe, DekdWeights], PartObjective]
    part_targets: Callable[[PartRecipe], PartTargets]   # which teacher targets the part's training reads
    flips: bool = False                     # default: parts train on randomly mirrored images

    def part_flips(self, recipe: PartRecipe) -> bool:
        return self.flips if recipe.flips is None else recipe.flips

    def fusion_hidden(self, teacher_dim: int) -> int:
        """DeViT's head maps to the teacher's CLS width (matched by MSE); ED-ViT's MLP is 256 wide."""
        return teacher_dim if self.fusion_kind == "devit" else 256


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise UserError(f"unknown decomposition method {name!r}; use one of {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def method_names() -> list[str]:
    return sorted(_METHODS)


register_method(Method(
    name="devit", summary="DeViT: students pruned in width from the teacher, distilled with DEKD",
    prune_shape="width", other_class=False, fusion_kind="devit", objective=DekdObjective,
    part_targets=lambda recipe: "dekd"))
register_method(Method(
    name="edvit", summary="ED-ViT: class-wise pruned teacher (heads and channels), trained on labels + 'other'",
    prune_shape="heads", other_class=True, fusion_kind="mlp", objective=LabelObjective,
    part_targets=lambda recipe: "soft" if recipe.kd_temperature > 0 else "none", flips=True))
