"""Teacher: train a timm ViT from scratch (or import a timm checkpoint) and write its card.

Output folder: `teacher.safetensors` + `teacher.json` (architecture, class names,
preprocessing, test accuracy, training time). Training is resumable per epoch from
`train-state/` (weights + AdamW moments as safetensors, progress as JSON).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress
from torch import nn

from decompose.checkpoints import CheckpointError, load_weights, read_tensors, save_weights
from decompose.datasets import ImageDataset
from decompose.preprocessing import Preprocessing
from decompose.training import (ComputePrecision, adamw, augment, autocast_dtype, batches, evaluate,
                                forward_precision, pick_device, to_tensors, warmup_cosine)
from decompose.vit_arch import ViTArch, build_vit, count_params, vit_flops
from vitfleet.versioned_card import read_versioned_card

TEACHER_FORMAT_VERSION = 1

# Presets sized for 28x28 grayscale. `fmnist` is the default teacher: patch 4 (50 tokens) is what gets a
# ViT past 90 % on Fashion-MNIST; patch 7 (17 tokens) trains faster per epoch but stalled at 85.8 % after
# 7 epochs here (docs/benchmarks.md). bf16 autocast makes 15 patch-4 epochs fit the 45-minute budget (90.1 %).
PRESETS: dict[str, dict[str, Any]] = {
    "fmnist": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=192, depth=6, num_heads=3),
    "fmnist-p7": dict(img_size=28, patch_size=7, in_chans=1, embed_dim=192, depth=8, num_heads=6),
    "fmnist-large": dict(img_size=28, patch_size=7, in_chans=1, embed_dim=256, depth=8, num_heads=8),
    "tiny": dict(img_size=28, patch_size=7, in_chans=1, embed_dim=48, depth=4, num_heads=4),
}
DATASET_STATS: dict[str, tuple[list[float], list[float]]] = {
    "fashion-mnist": ([0.2860], [0.3530]),
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
    "cifar100": ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
}


class TrainRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    seed: int = 0
    augment: bool = True  # per-image horizontal flips (a true invariance of these garments)
    # Shifting a whole batch by up to N pixels: off by default, it moves objects across the 4-pixel patch grid and
    # cost 5.5 pt after 2 epochs (77.8 % vs 83.3 % with flips alone, docs/benchmarks.md).
    translate_pixels: int = Field(0, ge=0)
    precision: ComputePrecision = "auto"


class TeacherCard(BaseModel):
    """teacher.json: everything needed to rebuild and use the teacher without pickles."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = TEACHER_FORMAT_VERSION
    arch: ViTArch
    source: str  # "trained:<preset>" or "imported:<timm name>"
    dataset: str
    class_names: list[str]
    preprocessing: Preprocessing
    weights: str = "teacher.safetensors"
    weights_sha256: str
    recipe: TrainRecipe | None = None
    metrics: dict[str, float] = {}


def preprocessing_for(dataset: str, arch: ViTArch) -> Preprocessing:
    mean, std = DATASET_STATS.get(dataset, ([0.5] * arch.in_chans, [0.5] * arch.in_chans))
    return Preprocessing(size=arch.img_size, channels=arch.in_chans, mean=mean, std=std)


def arch_for_preset(preset: str, num_classes: int, overrides: dict[str, Any] | None = None) -> ViTArch:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return ViTArch(**{**PRESETS[preset], "num_classes": num_classes, **(overrides or {})})


def _save_state(state_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, epoch: int, elapsed: float) -> None:
    from safetensors.torch import save_file

    state_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, state_dir / "model.safetensors")
    moments: dict[str, torch.Tensor] = {}
    for i, s in enumerate(opt.state_dict()["state"].values()):
        for k, v in s.items():
            moments[f"{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    save_file(moments, str(state_dir / "optimizer.safetensors"))
    (state_dir / "progress.json").write_text(json.dumps({"epoch": epoch, "elapsed": elapsed}))


def _load_state(state_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, float]:
    progress = json.loads((state_dir / "progress.json").read_text())
    load_weights(model, state_dir / "model.safetensors")
    moments = read_tensors(state_dir / "optimizer.safetensors")
    sd = opt.state_dict()
    for i, key in enumerate(sd["state"].keys() or range(sum(len(g["params"]) for g in sd["param_groups"]))):
        entry = {k.split(".", 1)[1]: v for k, v in moments.items() if k.split(".", 1)[0] == str(i)}
        if entry:
            sd["state"][key] = entry
    opt.load_state_dict(sd)
    return int(progress["epoch"]), float(progress["elapsed"])


def train_teacher(train: ImageDataset, test: ImageDataset, arch: ViTArch, recipe: TrainRecipe, out: Path,
                  dataset_name: str, source: str, progress: Progress | None = None,
                  max_steps: int | None = None) -> TeacherCard:
    """Train from scratch (resuming from out/train-state when present) and write the card."""
    device = pick_device()
    torch.manual_seed(recipe.seed)
    pre = preprocessing_for(dataset_name, arch)
    x, y = to_tensors(train, pre)
    xt, yt = to_tensors(test, pre)
    model = build_vit(arch).to(device)
    opt = adamw(model, recipe.lr, recipe.weight_decay)
    steps_per_epoch = -(-len(x) // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    sched = warmup_cosine(opt, total, int(recipe.warmup_epochs * steps_per_epoch))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    state_dir = out / "train-state"
    start_epoch, elapsed = 0, 0.0
    if (state_dir / "progress.json").exists():
        start_epoch, elapsed = _load_state(state_dir, model, opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fast-forwarding the schedule before any optimizer step is intended
            for _ in range(start_epoch * steps_per_epoch):
                sched.step()
    gen = torch.Generator().manual_seed(recipe.seed + start_epoch)
    task = progress.add_task("teacher", total=total, completed=start_epoch * steps_per_epoch) if progress else None
    losses: list[float] = []
    steps = 0
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        model.train()
        for idx in batches(len(x), recipe.batch_size, gen):
            xb = augment(x[idx], gen, pad=recipe.translate_pixels) if recipe.augment else x[idx]
            with forward_precision(device, recipe.precision):
                logits = model(xb.to(device))
            loss = loss_fn(logits.float(), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            steps += 1
            if progress is not None:
                progress.update(task, advance=1, description=f"teacher epoch {epoch + 1}/{recipe.epochs} "
                                                             f"loss {sum(losses[-20:]) / len(losses[-20:]):.3f}")
            if max_steps is not None and steps >= max_steps:
                break
        elapsed += time.perf_counter() - t0
        _save_state(state_dir, model, opt, epoch + 1, elapsed)
        if max_steps is not None and steps >= max_steps:
            break
    result = evaluate(model, xt, yt)
    metrics = {"test_top1": result.top1, "train_seconds": elapsed, "params": float(count_params(model)),
               "flops": float(vit_flops(arch)), "first_loss": losses[0] if losses else float("nan"),
               "last_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else float("nan"),
               "bf16_autocast": float(autocast_dtype(device, recipe.precision) is not None)}
    return write_teacher(model, arch, out, dataset_name, train.class_names, pre, source, recipe, metrics)


def write_teacher(model: nn.Module, arch: ViTArch, out: Path, dataset_name: str, class_names: list[str],
                  pre: Preprocessing, source: str, recipe: TrainRecipe | None,
                  metrics: dict[str, float]) -> TeacherCard:
    out.mkdir(parents=True, exist_ok=True)
    sha = save_weights(model, out / "teacher.safetensors")
    card = TeacherCard(arch=arch, source=source, dataset=dataset_name, class_names=class_names,
                       preprocessing=pre, weights_sha256=sha, recipe=recipe, metrics=metrics)
    (out / "teacher.json").write_text(card.model_dump_json(indent=2))
    return card


def read_card(folder: Path) -> TeacherCard:
    return read_versioned_card(folder / "teacher.json", TeacherCard, TEACHER_FORMAT_VERSION, CheckpointError,
                               "teacher card", f"train a teacher first: vitfleet teacher --out {folder}",
                               "re-create the teacher (vitfleet teacher)")


def load_teacher(folder: Path, device: torch.device | None = None) -> tuple[nn.Module, TeacherCard]:
    card = read_card(folder)
    model = build_vit(card.arch)
    load_weights(model, folder / card.weights, card.weights_sha256)
    model.eval()
    return (model.to(device) if device else model), card


def import_checkpoint(checkpoint: Path, timm_name: str, out: Path, dataset_name: str, class_names: list[str],
                      test: ImageDataset | None, timm_kwargs: dict[str, Any] | None = None) -> TeacherCard:
    """Import a fine-tuned timm ViT (safetensors, or a torch file read with weights_only=True)."""
    import timm

    try:
        model = timm.create_model(timm_name, pretrained=False, num_classes=len(class_names), **(timm_kwargs or {}))
    except RuntimeError as exc:
        raise CheckpointError(f"timm does not know the architecture {timm_name!r} ({exc}); "
                              "use a name from timm.list_models('vit_*')") from exc
    from timm.models.vision_transformer import VisionTransformer

    if not isinstance(model, VisionTransformer) or model.cls_token is None or model.global_pool != "token":
        raise CheckpointError(f"{timm_name} is not a class-token timm VisionTransformer; vitfleet decomposes "
                              "those only (e.g. vit_base_patch16_224, deit_small_patch16_224)")
    if checkpoint.suffix == ".safetensors":
        state = read_tensors(checkpoint)
    else:
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for foreign/corrupt files
            raise CheckpointError(f"cannot read {checkpoint} as a weights-only torch checkpoint ({exc}); "
                                  "convert it to safetensors") from exc
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint} does not match {timm_name} with {len(class_names)} classes: "
                              f"{str(exc).splitlines()[0]}") from exc
    pe = model.patch_embed
    first = model.blocks[0]
    arch = ViTArch(img_size=pe.img_size[0], patch_size=pe.patch_size[0], in_chans=pe.proj.in_channels,
                   num_classes=len(class_names), embed_dim=model.embed_dim, depth=len(model.blocks),
                   num_heads=first.attn.num_heads, mlp_ratio=first.mlp.fc1.out_features / model.embed_dim,
                   qkv_bias=first.attn.qkv.bias is not None)
    rebuilt = build_vit(arch)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    pre = preprocessing_for(dataset_name, arch)
    metrics: dict[str, float] = {"params": float(count_params(rebuilt)), "flops": float(vit_flops(arch))}
    if test is not None:
        xt, yt = to_tensors(test, pre)
        metrics["test_top1"] = evaluate(rebuilt, xt, yt).top1
    return write_teacher(rebuilt, arch, out, dataset_name, class_names, pre, f"imported:{timm_name}", None, metrics)
