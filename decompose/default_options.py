"""A method's default DecomposeOptions with any overrides (the CLI's flags, the bench's short recipe), and how a
bundle's recorded recipe differs from today's defaults (the bench marks such bundles in every table)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from vitfleet.decompose.dekd import DEFAULT_GAMMAS, DekdWeights
from vitfleet.decompose.fusion_training import FusionRecipe
from vitfleet.decompose.methods import get_method
from vitfleet.decompose.pipeline import DecomposeOptions
from vitfleet.decompose.prune import ImportanceBatches
from vitfleet.decompose.students import PartRecipe
from vitfleet.errors import UserError


def default_options(
    method: str,
    parts: int,
    *,
    part_budget: float | None = None,
    epochs: int | None = None,
    part_lr: float | None = None,
    part_lr_schedule: str = "cosine",
    part_warmup: float = 0.05,
    dekd_alpha: float = 0.5,
    dekd_gammas: tuple[float, float, float] = DEFAULT_GAMMAS,
    part_kd_temperature: float | None = None,
    other_fraction: float = 0.25,
    prune_steps: int | None = None,
    fusion_epochs: int | None = None,
    fusion_soft_temperature: float | None = None,
    fusion_flip_views: bool | None = None,
    part_dropout: float | None = None,
    relation_kl: str | None = None,
    partition: str | None = None,
    other_class: bool | None = None,
    joint_epochs: int | None = None,
    part_flips: bool | None = None,
    seed: int = 0,
    train_limit: int | None = None,
    test_limit: int | None = None,
    importance: ImportanceBatches = ImportanceBatches(),
) -> DecomposeOptions:
    """None means the method's default (its `defaults`, decompose/methods/)."""
    d = get_method(method).defaults

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    budget = pick(part_budget, d.part_budget)
    reduction = pick(relation_kl, d.relation_kl)
    if not 0 < budget <= 1:
        raise UserError(f"--part-budget is a fraction of the teacher's parameters in (0, 1], got {budget}")
    if reduction not in ("row-mean", "batchmean"):
        raise UserError(f"--relation-kl is row-mean or batchmean, got {reduction!r}")
    if part_lr_schedule not in ("cosine", "linear", "constant"):
        raise UserError(f"--part-lr-schedule is cosine, linear or constant, got {part_lr_schedule!r}")
    if not 0 <= part_warmup < 1:
        raise UserError(
            f"--part-warmup is the fraction of part training steps spent warming up, in [0, 1), got {part_warmup}"
        )
    if not 0 <= dekd_alpha <= 1:
        raise UserError(f"--dekd-alpha weighs the teacher's labels against the true ones, in [0, 1], got {dekd_alpha}")
    if len(dekd_gammas) != 3 or any(g < 0 for g in dekd_gammas):
        raise UserError(
            f"--dekd-gammas takes three non-negative weights for q, k and v, e.g. 0.2,0.1,0.3; "
            f"got {','.join(map(str, dekd_gammas))}"
        )
    part_recipe = PartRecipe(
        epochs=pick(epochs, d.part_epochs),
        lr=pick(part_lr, d.part_lr),
        seed=seed,
        lr_schedule=part_lr_schedule,
        warmup_fraction=part_warmup,  # type: ignore[arg-type]
        other_fraction=other_fraction,
        kd_temperature=pick(part_kd_temperature, d.part_kd_temperature),
        flips=pick(part_flips, d.part_flips),
        dekd=DekdWeights(
            alpha=dekd_alpha,
            gammas=tuple(dekd_gammas),  # type: ignore[arg-type]
            relation_reduction=reduction,
        ),
    )
    fusion_recipe = FusionRecipe(
        epochs=pick(fusion_epochs, d.fusion_epochs),
        part_dropout=pick(part_dropout, d.part_dropout),
        seed=seed,
        soft_temperature=pick(fusion_soft_temperature, d.fusion_soft_temperature),
        flip_views=pick(fusion_flip_views, d.fusion_flip_views),
    )
    return DecomposeOptions(
        method=method,
        parts=parts,
        partition=pick(partition, d.partition),  # type: ignore[arg-type]
        part_budget=budget,
        other_class=pick(other_class, d.other_class),
        joint_epochs=pick(joint_epochs, d.joint_epochs),
        seed=seed,
        train_limit=train_limit,
        test_limit=test_limit,
        prune_steps=pick(prune_steps, d.prune_steps),
        part_recipe=part_recipe,
        importance=importance,
        fusion_recipe=fusion_recipe,
    )


# Settings that do not change what is trained, or only where it is evaluated.
_NOT_RECIPE = {"test_limit", "seed"}
# Settings added after bundles had recorded their recipe, with the value every bundle before them used.
_ADDED_LATER: dict[str, Any] = {
    "part_recipe.lr_schedule": "cosine",
    "part_recipe.warmup_fraction": 0.05,
    "part_recipe.flips": None,
}


def recipe_deviations(method: str, parts: int, recipe: dict[str, Any] | None) -> list[str]:
    """What a bundle's recorded recipe changed from today's defaults ("recipe not recorded" for older bundles)."""
    if recipe is None:
        return ["recipe not recorded (made before bundles recorded their recipe)"]
    defaults = _flat(asdict(default_options(method, parts)))
    recorded = _flat(recipe)
    out = []
    for key, value in sorted(defaults.items()):
        if key.split(".")[0] in _NOT_RECIPE or key.endswith(".seed"):
            continue
        got = recorded.get(key, _ADDED_LATER.get(key))
        if got != _jsonish(value):
            out.append(f"{key}={got}")
    return out


def _jsonish(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = _jsonish(v)
    return out
