"""DeViT's distillation losses (DEKD), implemented from the paper's description.

- hard-label KD: (1 - α)·CE(student, label) + α·CE(student, argmax teacher over the subset)
- relation KL ("feature matching" across widths): for M in q, k, v at one matched middle
  layer, R = log_softmax(M·Mᵀ / √d_h) over tokens (N×N, so widths and head counts may
  differ), KL(R_teacher ‖ R_student), weighted γ_m / L_student.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_GAMMAS = (0.2, 0.1, 0.3)  # q, k, v


def relation(m: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(B, N, A) concatenated-head projections -> (B, N, N) log-probabilities."""
    return F.log_softmax(m @ m.transpose(1, 2) / head_dim**0.5, dim=-1)


RelationReduction = Literal["row-mean", "batchmean"]


def relation_kl(
    teacher_log: torch.Tensor, student_log: torch.Tensor, reduction: RelationReduction = "row-mean"
) -> torch.Tensor:
    """KL(teacher ‖ student) of (B, N, N) relations.

    "row-mean" averages the per-row KL over rows and batch (vitfleet's default so far); "batchmean" sums over
    the N rows and averages over the batch, as DeViT's reference (`KLDivLoss(reduction="batchmean")` over the
    N×N relation): N times stronger (50× at 50 tokens). Which trains better is measured, not assumed.
    """
    per_row = (teacher_log.exp() * (teacher_log - student_log)).sum(-1)
    return per_row.sum(-1).mean() if reduction == "batchmean" else per_row.mean()


def middle_layer(depth: int) -> int:
    """DeViT matches layer L/2 - 1 (0-based), i.e. the middle of the network."""
    return max(0, depth // 2 - 1)


class QKVTap:
    """Captures q, k, v of one block during a forward pass (a hook on its fused qkv Linear)."""

    def __init__(self, model: nn.Module, layer: int) -> None:
        attn = model.blocks[layer].attn
        self.head_dim = attn.qkv.out_features // 3 // attn.num_heads
        self.qkv: torch.Tensor | None = None
        self._handle = attn.qkv.register_forward_hook(self._hook)

    def _hook(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        self.qkv = output

    def relations(self) -> torch.Tensor:
        """(B, 3, N, N): relation log-probabilities of q, k and v."""
        if self.qkv is None:
            raise RuntimeError("QKVTap.relations() called before a forward pass")
        q, k, v = self.qkv.float().chunk(3, dim=-1)  # softmax over tokens in fp32 even under bf16 autocast
        return torch.stack([relation(m, self.head_dim) for m in (q, k, v)], dim=1)

    def remove(self) -> None:
        self._handle.remove()


@dataclass(frozen=True)
class DekdWeights:
    alpha: float = 0.5
    gammas: tuple[float, float, float] = DEFAULT_GAMMAS
    relation_reduction: RelationReduction = "row-mean"


def hard_kd_loss(
    logits: torch.Tensor, labels: torch.Tensor, teacher_labels: torch.Tensor, alpha: float
) -> torch.Tensor:
    return (1 - alpha) * F.cross_entropy(logits, labels) + alpha * F.cross_entropy(logits, teacher_labels)


def relation_loss(
    teacher_rel: torch.Tensor,
    student_rel: torch.Tensor,
    gammas: tuple[float, float, float],
    student_depth: int,
    reduction: RelationReduction = "row-mean",
) -> torch.Tensor:
    return sum(
        g / student_depth * relation_kl(teacher_rel[:, i], student_rel[:, i], reduction) for i, g in enumerate(gammas)
    )


def dekd_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_labels: torch.Tensor,
    teacher_rel: torch.Tensor,
    student_rel: torch.Tensor,
    student_depth: int,
    w: DekdWeights = DekdWeights(),
) -> dict[str, torch.Tensor]:
    kd = hard_kd_loss(logits, labels, teacher_labels, w.alpha)
    rel = relation_loss(teacher_rel, student_rel, w.gammas, student_depth, w.relation_reduction)
    return {"total": kd + rel, "kd": kd, "relation": rel}
