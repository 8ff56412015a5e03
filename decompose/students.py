"""A part's training data and recipe: its class subset (+ "other" images), the teacher targets it learns from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vitfleet.choices import ComputePrecisionName, LrScheduleName
from vitfleet.decompose.dekd import DekdWeights
from vitfleet.decompose.distillation import restricted_logits
from vitfleet.decompose.teacher_targets import TeacherTargets


@dataclass(frozen=True)
class PartRecipe:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    # Warm-up over this fraction of the steps, then the schedule's decay.
    lr_schedule: LrScheduleName = "cosine"
    warmup_fraction: float = 0.05
    weight_decay: float = 0.05
    seed: int = 0
    other_fraction: float = 0.25  # ED-ViT "other" class: this many out-of-subset images per in-subset image
    # ED-ViT parts augment like the default teacher they are pruned from: flips, no shifts (shifts cost fused
    # accuracy; both measured in docs/benchmarks.md).
    translate_pixels: int = 0
    precision: ComputePrecisionName = "auto"
    dekd: DekdWeights = field(default_factory=DekdWeights)  # DeViT students only
    # ED-ViT parts: distil the teacher's soft logits over the part's classes + "other" (the logsumexp of every
    # other class) at this temperature; 0 trains on labels alone (the paper's recipe).
    kd_temperature: float = 0.0
    kd_alpha: float = 0.5  # weight of the soft-target KL vs the label cross-entropy
    # Train on randomly mirrored images (the teacher's own augmentation). None: the method's choice
    # (decompose/methods/): ED-ViT parts flip; DeViT students flip only when asked, and then learn from the
    # teacher's targets on the mirrored pixels (its q/k/v relations on a flipped image are not the mirrored
    # relations of the original: docs/benchmarks.md, "Flipped images and DEKD").
    flips: bool | None = None


@dataclass
class SubsetData:
    """One part's training data: images, local labels, and (DeViT) teacher targets aligned with them."""

    x: torch.Tensor
    y_local: torch.Tensor
    teacher_local: torch.Tensor | None = None  # argmax of the teacher over the subset, as local ids
    teacher_rel: torch.Tensor | None = None  # (n, 3, T, T)
    teacher_soft: torch.Tensor | None = None  # (n, len(classes) [+ 1]) teacher logits restricted to the part
    # DeViT with flips: the teacher's targets computed on the horizontally mirrored images
    teacher_local_flipped: torch.Tensor | None = None
    teacher_rel_flipped: torch.Tensor | None = None


def subset_data(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: list[int],
    targets: TeacherTargets | None,
    other_fraction: float = 0.0,
    seed: int = 0,
    soft_targets: bool = False,
    flipped_targets: TeacherTargets | None = None,
) -> SubsetData:
    """Select the subset's images; with other_fraction > 0 add out-of-subset images labelled len(classes).
    `flipped_targets` (the teacher on the mirrored images, aligned with `targets`) feed DeViT's flips."""
    lut = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    lut[classes] = torch.arange(len(classes))
    inside = torch.nonzero(lut[y] >= 0).squeeze(1)
    idx = inside
    if other_fraction > 0:
        outside = torch.nonzero(lut[y] < 0).squeeze(1)
        g = torch.Generator().manual_seed(seed)
        n_other = min(len(outside), int(len(inside) * other_fraction))
        idx = torch.cat([inside, outside[torch.randperm(len(outside), generator=g)[:n_other]]])
    y_local = lut[y[idx]]
    y_local[y_local < 0] = len(classes)
    data = SubsetData(x[idx], y_local)
    if targets is not None and soft_targets:
        data.teacher_soft = restricted_logits(targets.logits[idx], classes, other_fraction > 0)
    elif targets is not None:
        data.teacher_local = restricted_logits(targets.logits[idx], classes, other_fraction > 0).argmax(1)
        data.teacher_rel = targets.relations[idx]
        if flipped_targets is not None:
            data.teacher_local_flipped = restricted_logits(
                flipped_targets.logits[idx], classes, other_fraction > 0
            ).argmax(1)
            data.teacher_rel_flipped = flipped_targets.relations[idx]
    return data


def mirrored_batch(
    data: SubsetData, idx: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A DeViT batch with a random half of its images mirrored, each paired with the teacher's hard label and
    q/k/v relations on exactly the pixels the student sees: (images, teacher labels, teacher relations)."""
    assert data.teacher_local is not None and data.teacher_rel is not None
    if data.teacher_local_flipped is None or data.teacher_rel_flipped is None:
        raise ValueError("mirrored batches need the teacher's targets on the flipped images (flipped_targets=)")
    mask = torch.rand(len(idx), generator=gen) < 0.5
    image_mask = mask[:, None, None, None]
    x = torch.where(image_mask, data.x[idx].flip(3), data.x[idx])
    labels = torch.where(mask, data.teacher_local_flipped[idx], data.teacher_local[idx])
    relations = torch.where(image_mask, data.teacher_rel_flipped[idx], data.teacher_rel[idx])
    return x, labels, relations
