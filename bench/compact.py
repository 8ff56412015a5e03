"""The compact single model: what a user would pick instead of a fleet (DeViT compares with MobileViT-S).

A plain ViT on all classes, as deep as the teacher, in two versions: trained from scratch on labels (like an
off-the-shelf small model) and distilled from the teacher's soft logits (T=4, half the loss; what DeViT
compares against) -- the fleets must beat the stronger of the two. Both are with the width chosen so its parameters come as close as possible to -- without
exceeding -- the largest part of the reference fleet. Exported to ONNX (fp32 and int8) for one board.
"""

from __future__ import annotations

import json
from pathlib import Path

from vitfleet.bench.settings import BenchSettings


def compact_arch(teacher_arch, budget_params: int):  # -> ViTArch
    from vitfleet.decompose.vit_arch import build_vit, count_params

    best = None
    for heads in (1, 2, 3, 4, 6, 8):
        for dim in range(8 * heads, teacher_arch.embed_dim + 1, 8 * heads):
            arch = teacher_arch.model_copy(update=dict(embed_dim=dim, num_heads=heads, blocks=None))
            params = count_params(build_vit(arch))
            if params <= budget_params and (best is None or params > best[0]):
                best = (params, arch)
    if best is None:  # budget below the smallest candidate: take the smallest
        arch = teacher_arch.model_copy(update=dict(embed_dim=8, num_heads=1, blocks=None))
        return arch
    return best[1]


KD_TEMPERATURE = 4.0


def ensure_compact(
    settings: BenchSettings, teacher_dir: Path, budget_params: int, progress=None, distilled: bool = False
) -> dict[str, Path]:
    """Train (once per budget and kind) and export; returns precision -> ONNX path, and "dir" -> its folder"""
    import numpy as np
    import torch

    from vitfleet.datasets import load_dataset
    from vitfleet.decompose.teacher import TrainRecipe, load_teacher, read_card, train_teacher
    from vitfleet.engines.build.export import export_teacher
    from vitfleet.engines.build.precision import to_int8

    tcard = read_card(teacher_dir)
    folder = settings.runs / "bench" / f"compact-{budget_params}{'-distilled' if distilled else ''}"
    if not (folder / "teacher.json").exists():
        arch = compact_arch(tcard.arch, budget_params)
        train = load_dataset(tcard.dataset, "train", pre=tcard.preprocessing).stratified_head(
            settings.compact_train_limit
        )
        test = load_dataset(tcard.dataset, "test", pre=tcard.preprocessing).head(settings.test_images)
        recipe = TrainRecipe(epochs=settings.compact_epochs)
        if tcard.recipe is not None:  # the teacher's schedule, only the epochs may differ
            recipe = tcard.recipe.model_copy(update=dict(epochs=settings.compact_epochs))
        soft = None
        if distilled:
            from vitfleet.decompose.training import predict_logits, to_tensors

            teacher, _ = load_teacher(teacher_dir)
            soft = predict_logits(teacher, to_tensors(train, tcard.preprocessing)[0])
            recipe = recipe.model_copy(update=dict(kd_temperature=KD_TEMPERATURE, kd_alpha=0.5))
        threads = torch.get_num_threads()
        train_teacher(
            train,
            test,
            arch,
            recipe,
            folder,
            tcard.dataset,
            "trained:compact-distilled" if distilled else "trained:compact",
            progress,
            soft_targets=soft,
        )
        torch.set_num_threads(threads)
    paths = {"fp32": folder / "compact.onnx", "int8": folder / "compact.int8.onnx"}
    if not paths["fp32"].exists() or not paths["int8"].exists():
        model, card = load_teacher(folder)
        pre = card.preprocessing
        export_teacher(model, (pre.channels, pre.size, pre.size), paths["fp32"], "compact")
        train = load_dataset(card.dataset, "train", pre=pre)
        calib = pre.normalize(train.stratified_head(settings.calib_images, seed=0).images)
        to_int8(paths["fp32"], paths["int8"], np.ascontiguousarray(calib, np.float32))
    (folder / "bench-compact.json").write_text(json.dumps({"budget_params": budget_params}))
    return {**paths, "dir": folder}
