"""A method's default recipe: the settings `vitfleet decompose` uses when a flag is not given.

Each method carries its own (decompose/methods/), so the ablation (docs/benchmarks.md, "Accuracy ablation")
changes a method's defaults in its one file and the bundle card records the settings that made it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MethodDefaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str  # random (both papers) or confusion
    part_budget: float  # fraction of the teacher's parameters per part (before fleet shares)
    part_epochs: int
    part_lr: float
    part_kd_temperature: float  # ED-ViT: soft-target KD from the teacher (0 = labels only)
    relation_kl: str  # DeViT: q/k/v relation KL reduction
    prune_steps: int
    fusion_epochs: int
    fusion_soft_temperature: float
    fusion_flip_views: bool
    part_dropout: float
    joint_epochs: int = 0  # fine-tune parts + fusion head together after the frozen-feature head
    other_class: bool | None = None  # None: the method's own choice (decompose/methods/)
    part_flips: bool | None = None  # None: the method's own choice (ED-ViT flips, DeViT does not)
