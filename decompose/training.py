"""Training plumbing shared by the teacher, the students and the fusion head.

Kept small on purpose: tensors in memory (the data sets here fit), light augmentation
on whole batches, AdamW + linear warmup + cosine decay, deterministic evaluation.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vitfleet.choices import ComputePrecisionName, LrScheduleName
from vitfleet.datasets import ImageDataset
from vitfleet.preprocessing import Preprocessing


def pick_device() -> torch.device:
    """CUDA when present; otherwise the CPU with every core busy."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if "VITFLEET_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["VITFLEET_THREADS"]))
    else:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch.device("cpu")


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """bf16 matmuls only pay on CPUs with native bf16 (AVX512-BF16 or AMX); elsewhere they are emulated, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, precision: ComputePrecisionName) -> torch.dtype | None:
    """The autocast dtype for the forward pass, or None for plain fp32. Weights and the optimizer stay fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bf16() else None


def forward_precision(device: torch.device, precision: ComputePrecisionName) -> contextlib.AbstractContextManager:
    """bf16 autocast where the hardware runs it natively (faster per step on such CPUs, docs/benchmarks.md); a
    no-op context otherwise."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_tensors(data: ImageDataset, pre: Preprocessing) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise once up front: the same numpy arithmetic the boards run."""
    return torch.from_numpy(pre.normalize(data.images)), torch.from_numpy(data.labels)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Random translation by up to `pad` pixels (edges replicated) and horizontal flip, drawn per batch."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    out = padded[:, :, dy : dy + h, dx : dx + w]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


def batches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def warmup_decay(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    shape: LrScheduleName = "cosine",
    min_ratio: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the peak rate, then `shape` down to min_ratio of it (constant: stays at the peak)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if shape == "constant":
            return 1.0
        fall = 1 - progress if shape == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
        return min_ratio + (1 - min_ratio) * fall

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_ratio: float = 0.01
) -> torch.optim.lr_scheduler.LambdaLR:
    return warmup_decay(optimizer, total_steps, warmup_steps, "cosine", min_ratio)


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """No weight decay on norms, biases, position embeddings and the class token (standard ViT practice).

    The fused kernel does the whole update in one pass per tensor: 4 % faster per teacher step on the CPU here.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(("pos_embed", "cls_token")) else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, fused=True
    )


def optimizer_step(
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    loss: torch.Tensor,
    losses: list[float],
    progress=None,
    task=None,
) -> None:
    """One update of every training loop here: backward, step, schedule; the loss is recorded, the bar advanced."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if progress is not None:
        progress.update(task, advance=1)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


@dataclass(frozen=True)
class EvalResult:
    top1: float
    n: int
    predictions: np.ndarray


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> EvalResult:
    preds = predict_logits(model, x, batch_size).argmax(1).numpy()
    return EvalResult(top1=float((preds == y.numpy()).mean()), n=len(y), predictions=preds)
