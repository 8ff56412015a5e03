"""ED-ViT (Liu et al., 2024): the teacher pruned class-wise (heads and channels), trained on labels + 'other'."""

from __future__ import annotations

from vitfleet.decompose.methods.registry import Method, kit_objective, register_method
from vitfleet.decompose.recipes import MethodDefaults

EDVIT = register_method(
    Method(
        name="edvit",
        summary="ED-ViT: class-wise pruned teacher (heads and channels), trained on labels + 'other'",
        prune_shape="heads",
        other_class=True,
        fusion_kind="mlp",
        objective=kit_objective("LabelObjective"),
        part_targets=lambda recipe: "soft" if recipe.kd_temperature > 0 else "none",
        flips=True,
        # From the ablation (docs/benchmarks.md, "Accuracy ablation", row edvit-combo-epochs14-joint1): soft-target
        # KD into the parts, the confusion partition, a 1/10 budget (largest int8 part still under 1/30 of the
        # teacher's bytes), 14 part epochs, the fusion head on soft labels and flipped views, then one epoch of joint
        # fine-tuning.
        defaults=MethodDefaults(
            partition="confusion",
            part_budget=0.1,
            part_epochs=14,
            part_lr=1e-3,
            part_kd_temperature=4.0,
            relation_kl="row-mean",
            prune_steps=1,
            fusion_epochs=15,
            fusion_soft_temperature=2.0,
            fusion_flip_views=True,
            part_dropout=0.15,
            joint_epochs=1,
        ),
    )
)
