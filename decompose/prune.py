"""Class-wise structured pruning of the teacher with torch-pruning (physically smaller, not masked).

Importance is group Taylor (|w · dL/dw| summed over a coupled group) with the loss
measured on one class subset's images, so each part keeps the heads and channels its
classes need. Two shapes:

- `width` (DeViT student init): every width shrinks together — embedding channels,
  per-head dims and MLP channels — to a DeiT-Tiny-like student (~1/4 of the width).
- `heads` (ED-ViT): whole attention heads and MLP channels go; embedding channels go
  too when the size budget cannot be met otherwise.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from vitfleet.decompose.methods.registry import PruneShape
from vitfleet.decompose.vit_arch import count_params
from vitfleet.errors import UserError


class PruneBudgetError(UserError):
    """The part budget is below what structured pruning can reach from this teacher."""


def _fix_attention_attrs(model: nn.Module, num_heads: dict[nn.Module, int]) -> None:
    """torch-pruning resizes the Linear layers; timm's Attention keeps scalar copies we must update."""
    for block in model.blocks:
        attn = block.attn
        heads = num_heads.get(attn.qkv, attn.num_heads)
        attn.num_heads = heads
        attn.head_dim = attn.qkv.out_features // 3 // heads
        attn.attn_dim = heads * attn.head_dim
        attn.scale = attn.head_dim**-0.5


def _accumulate_taylor(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, max_batches: int) -> None:
    model.zero_grad(set_to_none=True)
    model.eval()  # importance on the deployed behaviour: no dropout
    loss_fn = nn.CrossEntropyLoss()
    for i, start in enumerate(range(0, len(x), batch_size)):
        if i >= max_batches:
            break
        loss_fn(model(x[start : start + batch_size]), y[start : start + batch_size]).backward()


@dataclass(frozen=True)
class ImportanceBatches:
    """How many images score the channels: `max_batches` batches of `batch_size` (a 224² ViT-B wants few)."""

    batch_size: int = 128
    max_batches: int = 8


def taylor_scored(
    teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, batches: ImportanceBatches = ImportanceBatches()
) -> nn.Module:
    """A copy of `teacher` whose .grad holds the subset's loss gradients: the Taylor scores of every ratio."""
    model = copy.deepcopy(teacher).cpu()
    for p in model.parameters():
        p.requires_grad_(True)
    _accumulate_taylor(model, x, y, batches.batch_size, batches.max_batches)
    return model


def _copy_with_grads(scored: nn.Module) -> nn.Module:
    model = copy.deepcopy(scored)  # Parameter.__deepcopy__ drops .grad: carry the scores over by hand
    for p, q in zip(model.parameters(), scored.parameters()):
        p.grad = None if q.grad is None else q.grad.clone()
    return model


ROUND_TO = 8


def prune_scored(scored: nn.Module, example: torch.Tensor, ratio: float, shape: PruneShape) -> nn.Module:
    """A pruned copy of a `taylor_scored` model; `ratio` is the fraction of each prunable width removed."""
    import torch_pruning as tp

    model = _copy_with_grads(scored)
    num_heads = {b.attn.qkv: b.attn.num_heads for b in model.blocks}
    # Widths rounded to multiples of 8: int8/fp16 kernels run whole vector lanes, and an ED-ViT ViT-B part's
    # 221-wide embedding (442 B of float16 features + the 72 B header) missed the 512 B wire budget by 2 B.
    kwargs: dict = dict(pruning_ratio=ratio, ignored_layers=[model.head], num_heads=num_heads, round_to=ROUND_TO)
    if shape == "width":
        kwargs.update(prune_head_dims=True, prune_num_heads=False)
    else:
        # Never remove every head of a block: cap the head ratio so the smallest block keeps one.
        fewest = min(b.attn.num_heads for b in model.blocks)
        kwargs.update(
            prune_head_dims=False, prune_num_heads=fewest > 1, head_pruning_ratio=min(ratio, (fewest - 1) / fewest)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch-pruning warns about pos_embed/cls_token dims it handles correctly
        pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.GroupTaylorImportance(), **kwargs)
        pruner.step()
    _fix_attention_attrs(model, pruner.num_heads if hasattr(pruner, "num_heads") else {})
    model.zero_grad(set_to_none=True)
    return model


def prune_classwise(
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ratio: float,
    shape: PruneShape,
    batch_size: int = 128,
    max_batches: int = 8,
) -> nn.Module:
    """A pruned copy of `teacher`; `ratio` is the fraction of each prunable width removed."""
    scored = taylor_scored(teacher, x, y, ImportanceBatches(batch_size, max_batches))
    return prune_scored(scored, x[:2], ratio, shape)


# Parameters left at a pruning ratio depend on the architecture, the shape and the ratio only (every group loses
# the same fraction of its channels whatever their scores), so the bisection of one teacher's parts is shared:
# the first part of a budget searches, the others prune once. Keyed by (architecture key, shape, ratio).
_PARAMS_AT_RATIO: dict[tuple[str, str, float], int] = {}


def _arch_key(model: nn.Module) -> str:
    return ";".join(f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters())


def prune_to_budget(
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    max_params: int,
    shape: PruneShape,
    tolerance: float = 0.03,
    batches: ImportanceBatches = ImportanceBatches(),
) -> tuple[nn.Module, float]:
    """Bisect the pruning ratio so the pruned model has at most `max_params` parameters (largest such).

    The Taylor scores are computed once; each bisection step only prunes a copy (or, for a ratio this teacher
    architecture was already pruned at, reads the parameter count it gave)."""
    scored = taylor_scored(teacher, x, y, batches)
    example = x[:2]
    arch = _arch_key(teacher)
    pruned: dict[float, nn.Module] = {}

    def params_at(ratio: float) -> int:
        key = (arch, shape, round(ratio, 9))
        if key not in _PARAMS_AT_RATIO:
            pruned.clear()  # keep one candidate in memory: a ViT-B copy is 350 MB
            pruned[ratio] = prune_scored(scored, example, ratio, shape)
            _PARAMS_AT_RATIO[key] = count_params(pruned[ratio])
        return _PARAMS_AT_RATIO[key]

    lo, hi = 0.0, 0.98
    best: float | None = None
    for _ in range(10):
        mid = (lo + hi) / 2
        params = params_at(mid)
        if params <= max_params:
            best, hi = mid, mid
            if params >= max_params * (1 - tolerance):
                break
        else:
            lo = mid
    if best is None:
        # torch-pruning leaves a group whole rather than empty it, so a very small teacher can stop short.
        raise PruneBudgetError(
            f"pruning cannot bring this {count_params(teacher):,}-parameter model down to "
            f"{max_params:,} parameters; raise --part-budget or use --prune-steps 2 or more"
        )
    model = pruned[best] if best in pruned else prune_scored(scored, example, best, shape)
    return model, best


def replace_head(model: nn.Module, teacher_head: nn.Linear, classes: list[int], other_class: bool) -> nn.Module:
    """Local classifier over this part's classes, initialised from the teacher's rows for them."""
    d = model.head.in_features
    head = nn.Linear(d, len(classes) + (1 if other_class else 0))
    with torch.no_grad():
        if model.head.weight.shape[1] == d:
            head.weight[: len(classes)] = model.head.weight[classes]
            head.bias[: len(classes)] = model.head.bias[classes]
        if other_class:
            head.weight[-1].zero_()
            head.bias[-1].fill_(float(teacher_head.bias.min()))
    model.head = head
    model.num_classes = head.out_features
    return model
