"""Training the fusion head on frozen part features, with part dropout.

Part dropout masks each part independently (never all of them) so the head learns to
answer from whatever arrived; the aggregator masks a silent board the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from vitfleet.decompose.fusion_heads import get_fusion_head
from vitfleet.decompose.fusion_heads.base import FusionHead
from vitfleet.decompose.training import adamw, batches, optimizer_step, warmup_cosine


@dataclass(frozen=True)
class FusionRecipe:
    epochs: int = 15
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    part_dropout: float = 0.15
    alpha: float = 0.5  # DeViT: weight of hard KD vs the true label
    mse_weight: float = 1.0  # DeViT: aggregated token -> teacher CLS
    seed: int = 0
    # > 0: the teacher's soft logits at this temperature replace its hard labels (DeViT) or join the true
    # labels with weight `alpha` (ED-ViT's MLP head). 0 keeps the hard-label recipe.
    soft_temperature: float = 0.0
    # Also train on the part features of horizontally flipped training images (the teacher's augmentation):
    # twice the feature rows, so the head sees features the parts did not produce on the exact images they fit.
    flip_views: bool = False


@torch.no_grad()
def part_features(parts: list[nn.Module], x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, sum D) concatenated CLS features of every part."""
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        out.append(torch.cat([p(xb) for p in parts], dim=1))
    return torch.cat(out)


def dropout_mask(n: int, k: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(n, k) float mask; each part kept with prob 1-p, at least one part kept per row."""
    mask = (torch.rand(n, k, generator=generator) >= p).float()
    empty = mask.sum(1) == 0
    if empty.any():
        keep = torch.randint(0, k, (int(empty.sum()),), generator=generator)
        mask[empty.nonzero().squeeze(1), keep] = 1.0
    return mask


def _teacher_term(logits: torch.Tensor, teacher_logits: torch.Tensor, recipe: FusionRecipe) -> torch.Tensor:
    """The head's distillation term: soft KL at the recipe's temperature, or CE on the teacher's argmax."""
    if recipe.soft_temperature > 0:
        t = recipe.soft_temperature
        return (
            F.kl_div(
                F.log_softmax(logits / t, dim=1),
                F.log_softmax(teacher_logits / t, dim=1),
                reduction="batchmean",
                log_target=True,
            )
            * t
            * t
        )
    return F.cross_entropy(logits, teacher_logits.argmax(1))


def fusion_loss(
    head: FusionHead,
    logits: torch.Tensor,
    token: torch.Tensor,
    y: torch.Tensor,
    recipe: FusionRecipe,
    teacher_cls: torch.Tensor | None,
    teacher_logits: torch.Tensor | None,
) -> torch.Tensor:
    ce = F.cross_entropy(logits, y)
    if teacher_logits is None:
        return ce
    if get_fusion_head(head.kind).matches_teacher_cls and teacher_cls is not None:
        return (
            (1 - recipe.alpha) * ce
            + recipe.alpha * _teacher_term(logits, teacher_logits, recipe)
            + recipe.mse_weight * F.mse_loss(token, teacher_cls)
        )
    if recipe.soft_temperature > 0:
        return (1 - recipe.alpha) * ce + recipe.alpha * _teacher_term(logits, teacher_logits, recipe)
    return ce


def train_fusion(
    head: FusionHead,
    feats: torch.Tensor,
    y: torch.Tensor,
    recipe: FusionRecipe,
    teacher_cls: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
    progress=None,
    task=None,
) -> list[float]:
    gen = torch.Generator().manual_seed(recipe.seed)
    k = len(head.feature_dims)
    steps = -(-len(feats) // recipe.batch_size) * recipe.epochs
    opt = adamw(head, recipe.lr, recipe.weight_decay)
    sched = warmup_cosine(opt, steps, max(1, steps // 20))
    losses: list[float] = []
    head.train()
    for _ in range(recipe.epochs):
        for idx in batches(len(feats), recipe.batch_size, gen):
            mask = dropout_mask(len(idx), k, recipe.part_dropout, gen)
            token = head.token(feats[idx], mask)
            logits = head.classifier(token)
            loss = fusion_loss(
                head,
                logits,
                token,
                y[idx],
                recipe,
                None if teacher_cls is None else teacher_cls[idx],
                None if teacher_logits is None else teacher_logits[idx],
            )
            optimizer_step(opt, sched, loss, losses, progress, task)
    head.eval()
    return losses


@torch.no_grad()
def fused_accuracy(head: FusionHead, feats: torch.Tensor, y: torch.Tensor, missing: int | None = None) -> float:
    head.eval()
    mask = torch.ones(len(feats), len(head.feature_dims))
    if missing is not None:
        mask[:, missing] = 0.0
    return float((head(feats, mask).argmax(1) == y).float().mean())


def train_joint(
    head: FusionHead,
    parts: list[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: FusionRecipe,
    epochs: int,
    backbone_lr_scale: float = 0.1,
    teacher_cls: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
    progress=None,
    task=None,
) -> list[float]:
    """DeViT's ensemble stage with the backbones fine-tuned jointly (after the frozen-feature warm start).

    Part dropout stays on, so fine-tuning cannot teach the head to rely on every board being there.
    """
    gen = torch.Generator().manual_seed(recipe.seed + 1)
    k = len(parts)
    steps = -(-len(x) // recipe.batch_size) * epochs
    params = [
        {"params": [p for m in parts for p in m.parameters()], "lr": recipe.lr * backbone_lr_scale},
        {"params": list(head.parameters()), "lr": recipe.lr * 0.5},
    ]
    opt = torch.optim.AdamW(params, weight_decay=recipe.weight_decay)
    sched = warmup_cosine(opt, steps, max(1, steps // 20))
    losses: list[float] = []
    for m in parts:
        m.train()
    head.train()
    for _ in range(epochs):
        for idx in batches(len(x), recipe.batch_size, gen):
            feats = torch.cat([m(x[idx]) for m in parts], dim=1)
            mask = dropout_mask(len(idx), k, recipe.part_dropout, gen)
            token = head.token(feats, mask)
            logits = head.classifier(token)
            loss = fusion_loss(
                head,
                logits,
                token,
                y[idx],
                recipe,
                None if teacher_cls is None else teacher_cls[idx],
                None if teacher_logits is None else teacher_logits[idx],
            )
            optimizer_step(opt, sched, loss, losses, progress, task)
    for m in parts:
        m.eval()
    head.eval()
    return losses
