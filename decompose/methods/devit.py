"""DeViT (Xu et al., IEEE TMC 2024): students pruned in width from the teacher, distilled with DEKD."""

from __future__ import annotations

from vitfleet.decompose.methods.registry import Method, kit_objective, register_method
from vitfleet.decompose.recipes import MethodDefaults

DEVIT = register_method(
    Method(
        name="devit",
        summary="DeViT: students pruned in width from the teacher, distilled with DEKD",
        prune_shape="width",
        other_class=False,
        fusion_kind="devit",
        objective=kit_objective("DekdObjective"),
        part_targets=lambda recipe: "dekd",
        # From the ablation (docs/benchmarks.md, "Accuracy ablation", row devit-combo): students of 1/10 of the
        # teacher that also see other parts' images as an "other" class, the reference's relation-KL scale, the
        # confusion partition, and the fusion head on soft labels and flipped views.
        defaults=MethodDefaults(
            partition="confusion",
            part_budget=0.1,
            part_epochs=10,
            part_lr=1e-3,
            part_kd_temperature=0.0,
            relation_kl="batchmean",
            prune_steps=1,
            fusion_epochs=15,
            fusion_soft_temperature=2.0,
            fusion_flip_views=True,
            part_dropout=0.15,
            other_class=True,
        ),
    )
)
