"""Figures for `vitfleet eval`: accuracy, size and compute of a teacher or a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from decompose.datasets import ImageDataset
from decompose.training import evaluate, to_tensors
from decompose.vit_arch import count_params, vit_flops


def evaluate_teacher(folder: Path, test: ImageDataset) -> dict[str, Any]:
    from decompose.teacher import load_teacher

    model, card = load_teacher(folder)
    x, y = to_tensors(test, card.preprocessing)
    result = evaluate(model, x, y)
    return {"top1": result.top1, "images": result.n, "params": count_params(model),
            "flops_per_image": vit_flops(card.arch), "source": card.source,
            "train_seconds": card.metrics.get("train_seconds")}
