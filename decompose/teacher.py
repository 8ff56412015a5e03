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

from vitfleet.choices import ComputePrecisionName
from vitfleet.datasets import ImageDataset
from vitfleet.decompose.checkpoints import (
    CheckpointError,
    check_vit_state_fits,
    load_weights,
    read_state_dict,
    read_tensors,
    save_weights,
)
from vitfleet.decompose.distillation import soft_kd_loss
from vitfleet.decompose.training import (
    adamw,
    augment,
    autocast_dtype,
    batches,
    evaluate,
    forward_precision,
    pick_device,
    to_tensors,
    warmup_cosine,
)

# PRESETS and arch_for_preset are re-exported: callers import them from here.
from vitfleet.decompose.vit_arch import (  # noqa: F401
    PRESETS,
    ArchError,
    ViTArch,
    arch_for_preset,
    arch_from_timm,
    build_vit,  # noqa: F401
    count_params,
    create_timm_vit,
    vit_flops,
)
from vitfleet.preprocessing import Preprocessing, fit_images
from vitfleet.versioned_card import read_versioned_card

TEACHER_FORMAT_VERSION = 1

# Presets live in vit_arch (PRESETS, arch_for_preset, re-exported here for older imports). bf16 autocast is what
# makes the `fmnist` preset's default epochs fit the teacher's training budget (docs/benchmarks.md).
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
    # cost accuracy against flips alone (docs/benchmarks.md).
    translate_pixels: int = Field(0, ge=0)
    precision: ComputePrecisionName = "auto"
    # Distillation from another model's logits (the bench's distilled compact baseline): 0 = labels only.
    kd_temperature: float = Field(0.0, ge=0)
    kd_alpha: float = Field(0.5, ge=0, le=1)


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


def stats_for_channels(mean: list[float], std: list[float], channels: int) -> tuple[list[float], list[float]]:
    """Per-channel statistics for a model of `channels` inputs: as given, or averaged over the given channels
    when the counts differ (a grayscale model of RGB data sees each gray pixel as all three channels alike)."""
    if len(mean) == channels:
        return list(mean), list(std)
    return [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels


def preprocessing_for(dataset: str, arch: ViTArch) -> Preprocessing:
    """The named set's statistics (0.5 for folders) at the model's size and channels."""
    mean, std = DATASET_STATS.get(dataset, ([0.5], [0.5]))
    mean, std = stats_for_channels(mean, std, arch.in_chans)
    return Preprocessing(size=arch.img_size, channels=arch.in_chans, mean=mean, std=std)


def fit_dataset(data: ImageDataset, pre: Preprocessing) -> ImageDataset:
    """Data a caller loaded without `pre` (Fashion-MNIST/CIFAR as stored), converted like load_dataset(pre=)."""
    images = fit_images(data.images, pre.size, pre.channels)
    return data if images is data.images else ImageDataset(images, data.labels, data.class_names, data.name)


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


def train_teacher(
    train: ImageDataset,
    test: ImageDataset,
    arch: ViTArch,
    recipe: TrainRecipe,
    out: Path,
    dataset_name: str,
    source: str,
    progress: Progress | None = None,
    max_steps: int | None = None,
    soft_targets: torch.Tensor | None = None,
) -> TeacherCard:
    """Train from scratch (resuming from out/train-state when present) and write the card.

    `soft_targets` (N, C): another model's logits on `train`, distilled with recipe.kd_temperature > 0."""
    if recipe.kd_temperature > 0 and (soft_targets is None or len(soft_targets) != len(train)):
        raise ValueError("recipe.kd_temperature > 0 needs soft_targets, one row per training image")
    device = pick_device()
    torch.manual_seed(recipe.seed)
    pre = preprocessing_for(dataset_name, arch)
    x, y = to_tensors(fit_dataset(train, pre), pre)
    xt, yt = to_tensors(fit_dataset(test, pre), pre)
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
            if recipe.kd_temperature > 0 and soft_targets is not None:
                kd = soft_kd_loss(logits.float(), soft_targets[idx].to(device).float(), recipe.kd_temperature)
                loss = (1 - recipe.kd_alpha) * loss + recipe.kd_alpha * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            steps += 1
            if progress is not None:
                progress.update(
                    task,
                    advance=1,
                    description=f"teacher epoch {epoch + 1}/{recipe.epochs} "
                    f"loss {sum(losses[-20:]) / len(losses[-20:]):.3f}",
                )
            if max_steps is not None and steps >= max_steps:
                break
        elapsed += time.perf_counter() - t0
        _save_state(state_dir, model, opt, epoch + 1, elapsed)
        if max_steps is not None and steps >= max_steps:
            break
    result = evaluate(model, xt, yt)
    metrics = {
        "test_top1": result.top1,
        "train_seconds": elapsed,
        "params": float(count_params(model)),
        "flops": float(vit_flops(arch)),
        "first_loss": losses[0] if losses else float("nan"),
        "last_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else float("nan"),
        "bf16_autocast": float(autocast_dtype(device, recipe.precision) is not None),
    }
    return write_teacher(model, arch, out, dataset_name, train.class_names, pre, source, recipe, metrics)


def write_teacher(
    model: nn.Module,
    arch: ViTArch,
    out: Path,
    dataset_name: str,
    class_names: list[str],
    pre: Preprocessing,
    source: str,
    recipe: TrainRecipe | None,
    metrics: dict[str, float],
) -> TeacherCard:
    out.mkdir(parents=True, exist_ok=True)
    sha = save_weights(model, out / "teacher.safetensors")
    card = TeacherCard(
        arch=arch,
        source=source,
        dataset=dataset_name,
        class_names=class_names,
        preprocessing=pre,
        weights_sha256=sha,
        recipe=recipe,
        metrics=metrics,
    )
    (out / "teacher.json").write_text(card.model_dump_json(indent=2))
    return card


def read_card(folder: Path) -> TeacherCard:
    return read_versioned_card(
        folder / "teacher.json",
        TeacherCard,
        TEACHER_FORMAT_VERSION,
        CheckpointError,
        "teacher card",
        f"train a teacher first: vitfleet teacher --out {folder}",
        "re-create the teacher (vitfleet teacher)",
    )


def load_teacher(folder: Path, device: torch.device | None = None) -> tuple[nn.Module, TeacherCard]:
    card = read_card(folder)
    model = build_vit(card.arch, init=False)
    load_weights(model, folder / card.weights, card.weights_sha256)
    model.eval()
    return (model.to(device) if device else model), card


def timm_mean_std(timm_model: nn.Module, in_chans: int) -> tuple[list[float], list[float]]:
    """Normalisation of timm's pretrained_cfg for this model name (what its fine-tuning scripts used);
    a 1-channel model gets the mean of the three values (timm adapts RGB stems to gray by summing filters)."""
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(timm_model)
    return stats_for_channels([float(v) for v in cfg["mean"]], [float(v) for v in cfg["std"]], in_chans)


def user_mean_std(values: list[float] | None, in_chans: int, flag: str) -> list[float] | None:
    if values is None:
        return None
    if len(values) == 1:
        return values * in_chans
    if len(values) != in_chans:
        raise CheckpointError(
            f"{flag} has {len(values)} values but the model takes {in_chans} channels; give 1 or {in_chans} values"
        )
    if flag == "--std" and any(v <= 0 for v in values):
        raise CheckpointError(f"--std values must be positive, got {values}")
    return values


def load_timm_checkpoint(
    checkpoint: Path,
    timm_name: str,
    num_classes: int,
    dataset: str,
    timm_kwargs: dict[str, Any] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> tuple[nn.Module, ViTArch, Preprocessing]:
    """A user's fine-tuned timm ViT, rebuilt as vitfleet's schema with the same weights and preprocessing.

    The rebuilt model is checked against timm's own forward pass, so what gets decomposed is exactly the
    checkpoint the user evaluated."""
    timm_model = create_timm_vit(timm_name, num_classes, timm_kwargs)
    state = read_state_dict(checkpoint)
    check_vit_state_fits(state, timm_model, timm_name, num_classes, dataset)
    timm_model.load_state_dict(state)
    timm_model.eval()
    arch = arch_from_timm(timm_model, timm_name)
    rebuilt = build_vit(arch, init=False)
    rebuilt.load_state_dict(timm_model.state_dict(), strict=True)
    rebuilt.eval()
    probe = torch.randn(2, arch.in_chans, arch.img_size, arch.img_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.allclose(rebuilt(probe), timm_model(probe), atol=1e-4, rtol=1e-4):
            raise ArchError(
                f"{timm_name} computes differently from a plain ViT with the same weights (a custom "
                "layer or activation); use a plain ViT/DeiT name such as vit_base_patch16_224"
            )
    default_mean, default_std = timm_mean_std(timm_model, arch.in_chans)
    pre = Preprocessing(
        size=arch.img_size,
        channels=arch.in_chans,
        mean=user_mean_std(mean, arch.in_chans, "--mean") or default_mean,
        std=user_mean_std(std, arch.in_chans, "--std") or default_std,
    )
    return rebuilt, arch, pre


def write_imported_teacher(
    model: nn.Module,
    arch: ViTArch,
    pre: Preprocessing,
    timm_name: str,
    out: Path,
    dataset_name: str,
    class_names: list[str],
    test: ImageDataset | None,
) -> TeacherCard:
    metrics: dict[str, float] = {"params": float(count_params(model)), "flops": float(vit_flops(arch))}
    if test is not None:
        xt, yt = to_tensors(fit_dataset(test, pre), pre)
        metrics["test_top1"] = evaluate(model, xt, yt).top1
    return write_teacher(model, arch, out, dataset_name, class_names, pre, f"imported:{timm_name}", None, metrics)


def import_checkpoint(
    checkpoint: Path,
    timm_name: str,
    out: Path,
    dataset_name: str,
    class_names: list[str],
    test: ImageDataset | None,
    timm_kwargs: dict[str, Any] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> TeacherCard:
    """Import a fine-tuned timm ViT (.safetensors, or a weights-only .pth/.pt) and write its teacher card.

    `test` may be loaded without a Preprocessing (Fashion-MNIST/CIFAR as stored); it is converted here."""
    model, arch, pre = load_timm_checkpoint(
        checkpoint, timm_name, len(class_names), dataset_name, timm_kwargs, mean, std
    )
    return write_imported_teacher(model, arch, pre, timm_name, out, dataset_name, class_names, test)
