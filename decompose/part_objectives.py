"""What a part learns from: the training objectives the decomposition methods (decompose/methods/) choose from."""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from vitfleet.decompose.dekd import DekdWeights, QKVTap, dekd_loss, middle_layer
from vitfleet.decompose.distillation import soft_kd_loss
from vitfleet.decompose.students import PartRecipe, SubsetData, mirrored_batch
from vitfleet.decompose.training import augment, forward_precision

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
        return dekd_loss(
            logits,
            data.y_local[idx].to(device),
            teacher_labels.to(device),
            teacher_rel.to(device).float(),
            self.tap.relations(),
            self.depth,
            self.weights,
        )["total"]

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
