"""Figures for `vitfleet eval`: accuracy, size and compute of a teacher or a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitfleet.datasets import ImageDataset
from vitfleet.decompose.training import evaluate, to_tensors
from vitfleet.decompose.vit_arch import count_params, vit_flops


def evaluate_teacher(folder: Path, test: ImageDataset) -> dict[str, Any]:
    from vitfleet.decompose.teacher import load_teacher

    model, card = load_teacher(folder)
    x, y = to_tensors(test, card.preprocessing)
    result = evaluate(model, x, y)
    return {
        "top1": result.top1,
        "images": result.n,
        "params": count_params(model),
        "flops_per_image": vit_flops(card.arch),
        "source": card.source,
        "train_seconds": card.metrics.get("train_seconds"),
    }


def evaluate_bundle(folder: Path, test: ImageDataset) -> dict[str, Any]:
    """Teacher vs fused top-1, per-part size/compute/payload, and accuracy with each single part missing."""
    import torch

    from vitfleet.decompose.bundle import load_fusion, load_part, read_bundle
    from vitfleet.decompose.fusion_training import fused_accuracy, part_features
    from vitfleet.decompose.teacher import load_teacher

    card = read_bundle(folder)
    x, y = to_tensors(test, card.preprocessing)
    parts = [load_part(folder, i, card) for i in range(card.num_parts)]
    head = load_fusion(folder, card)
    with torch.no_grad():
        feats = part_features(parts, x)
    report: dict[str, Any] = {"method": card.method, "parts": card.num_parts, "images": len(y)}
    teacher_dir = Path(card.teacher.path)
    if (teacher_dir / "teacher.json").exists():
        teacher, _ = load_teacher(teacher_dir)
        report["teacher_top1"] = evaluate(teacher, x, y).top1
    report["fused_top1"] = fused_accuracy(head, feats, y)
    if "teacher_top1" in report:
        report["delta_pt"] = 100 * (report["fused_top1"] - report["teacher_top1"])
    report["teacher_params"] = card.teacher.params
    report["teacher_flops"] = card.teacher.flops
    for spec in card.parts:
        report[f"part{spec.index}_classes"] = ",".join(card.class_names[c] for c in spec.classes)
        report[f"part{spec.index}_params"] = spec.params
        report[f"part{spec.index}_flops"] = spec.flops
        report[f"part{spec.index}_feature_bytes_fp16"] = 2 * spec.feature_dim
    largest = max(s.params for s in card.parts)
    report["largest_part_params"] = largest
    report["largest_part_vs_teacher"] = largest / card.teacher.params
    for i in range(card.num_parts):
        report[f"top1_without_part{i}"] = fused_accuracy(head, feats, y, missing=i)
    report["chance"] = 1 / len(card.class_names)
    return report
