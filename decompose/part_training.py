"""Training one part on its class subset with its method's objective (decompose/methods/)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from vitfleet.decompose.dekd import DekdWeights
from vitfleet.decompose.methods import get_method
from vitfleet.decompose.students import PartRecipe, SubsetData
from vitfleet.decompose.training import adamw, batches, optimizer_step, warmup_decay


def train_part(
    model: nn.Module,
    data: SubsetData,
    method: str,
    recipe: PartRecipe,
    progress=None,
    task=None,
    max_steps: int | None = None,
    weights: DekdWeights | None = None,
) -> list[float]:
    """Train in place with the method's objective; returns the per-step total loss (tests check it falls)."""
    recipe = replace(recipe, flips=get_method(method).part_flips(recipe))
    gen = torch.Generator().manual_seed(recipe.seed)
    steps_per_epoch = -(-len(data.x) // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs if max_steps is None else min(max_steps, steps_per_epoch * recipe.epochs)
    opt = adamw(model, recipe.lr, recipe.weight_decay)
    sched = warmup_decay(opt, total, max(1, int(total * recipe.warmup_fraction + 1e-9)), recipe.lr_schedule)
    objective = get_method(method).objective(model, recipe, weights or recipe.dekd)
    losses: list[float] = []
    model.train()
    try:
        for _epoch in range(recipe.epochs):
            for idx in batches(len(data.x), recipe.batch_size, gen):
                loss = objective.loss(model, data, idx, gen)
                optimizer_step(opt, sched, loss, losses, progress, task)
                if len(losses) >= total:
                    return losses
    finally:
        objective.close()
        model.eval()
    return losses
