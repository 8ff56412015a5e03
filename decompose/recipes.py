"""Each method's default recipe: the settings `vitfleet decompose` uses when a flag is not given.

One table, so the ablation (docs/benchmarks.md, "Accuracy ablation") changes defaults in one place and the
bundle card records the settings that made it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MethodDefaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str                # random (both papers) or confusion
    part_budget: float            # fraction of the teacher's parameters per part (before fleet shares)
    part_epochs: int
    part_lr: float
    part_kd_temperature: float    # ED-ViT: soft-target KD from the teacher (0 = labels only)
    relation_kl: str              # DeViT: q/k/v relation KL reduction
    prune_steps: int
    fusion_epochs: int
    fusion_soft_temperature: float
    fusion_flip_views: bool
    part_dropout: float
    joint_epochs: int = 0         # fine-tune parts + fusion head together after the frozen-feature head
    other_class: bool | None = None   # None: the method's own choice (decompose/methods.py)
    part_flips: bool | None = None    # None: the method's own choice (ED-ViT flips, DeViT does not)


METHOD_DEFAULTS: dict[str, MethodDefaults] = {
    # From the ablation (docs/benchmarks.md, "Accuracy ablation", row devit-combo: -0.37 pt from the 89.88 %
    # teacher; the previous defaults -- 1/16 budget, random partition, row-mean relation KL, no "other" class --
    # lost 1.98 pt from the 90.11 % one): students of 1/10 of the teacher that also see other parts' images as
    # an "other" class, the reference's relation-KL scale, the confusion partition, and the fusion head on soft
    # labels and flipped views.
    "devit": MethodDefaults(partition="confusion", part_budget=0.1, part_epochs=10, part_lr=1e-3,
                            part_kd_temperature=0.0, relation_kl="batchmean", prune_steps=1, fusion_epochs=15,
                            fusion_soft_temperature=2.0, fusion_flip_views=True, part_dropout=0.15,
                            other_class=True),
    # From the ablation (docs/benchmarks.md, "Accuracy ablation", row edvit-combo-epochs14-joint1: -0.17 pt from
    # the 89.88 % teacher in 45.0 min on one core, was -1.10 pt with the previous defaults from the 90.11 % one):
    # soft-target KD into the parts, the confusion partition, a 1/10 budget (largest int8 part still under 1/30
    # of the teacher's bytes), 14 part epochs, the fusion head on soft labels and flipped views, then one epoch
    # of joint fine-tuning (row edvit-combo, 10 epochs and no joint epoch: -0.71 pt).
    "edvit": MethodDefaults(partition="confusion", part_budget=0.1, part_epochs=14, part_lr=1e-3,
                            part_kd_temperature=4.0, relation_kl="row-mean", prune_steps=1, fusion_epochs=15,
                            fusion_soft_temperature=2.0, fusion_flip_views=True, part_dropout=0.15, joint_epochs=1),
}
