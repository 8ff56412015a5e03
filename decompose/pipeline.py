"""`vitfleet decompose`: teacher -> K class-specialised sub-ViTs + fusion head -> bundle.

Stages (each resumable: a finished stage leaves a file and is skipped on re-run):
  1. teacher targets (logits, CLS token, q/k/v relations)   cache/targets-<key>.safetensors
     (DeViT students with flips: also on the mirrored images    cache/targets-<key>-flipped.safetensors)
     (only when something trains on them or the partition needs them: `--epochs 0 --fusion-epochs 0`
     derives the parts by pruning alone, for size and latency measurements of untrained teachers)
  2. class partition (random or confusion-driven)             cache/partition.json
  3. per part: class-wise prune of the teacher, then train     part{i}.safetensors + part{i}.json
  4. fusion head on frozen part features, with part dropout   fusion.safetensors
  5. evaluation and the bundle card                           bundle.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vitfleet.choices import PartitionName
from vitfleet.datasets import load_dataset
from vitfleet.decompose.bundle import BundleCard, FusionSpec, PartSpec, TeacherRef, write_card
from vitfleet.decompose.checkpoints import load_weights, save_weights
from vitfleet.decompose.fusion_heads import get_fusion_head
from vitfleet.decompose.fusion_training import FusionRecipe, fused_accuracy, part_features, train_fusion, train_joint
from vitfleet.decompose.methods import get_method
from vitfleet.decompose.part_features import PartFeatures
from vitfleet.decompose.part_training import train_part
from vitfleet.decompose.partition import confusion_partition, random_partition, soft_confusion, validate_partition
from vitfleet.decompose.prune import ROUND_TO, ImportanceBatches, prune_to_budget, replace_head
from vitfleet.decompose.students import PartRecipe, subset_data
from vitfleet.decompose.teacher import TeacherCard, load_teacher
from vitfleet.decompose.teacher_targets import TeacherTargets, compute_targets
from vitfleet.decompose.training import evaluate, pick_device, to_tensors
from vitfleet.decompose.vit_arch import arch_of, build_vit, count_params, vit_flops
from vitfleet.fleet_config import FleetConfig
from vitfleet.placement import PartCost, PlacementError, params_fitting, place_parts, size_shares

log = logging.getLogger("vitfleet.decompose")


def default_budget(method: str) -> float:
    """Default size of one part relative to the teacher's parameters (each method holds its defaults)."""
    return get_method(method).defaults.part_budget


MAX_PLACEMENT_ATTEMPTS = 4  # derive + train, place; a part that fits no board is re-derived smaller


@dataclass(frozen=True)
class DecomposeOptions:
    """Every setting of one decomposition. Its own defaults are the bare mechanism with every accuracy lever off
    (random partition, labels-only parts, hard-label fusion), which tests and the tiny demo build on;
    `decompose/default_options.default_options(method, parts)` gives a method's recommended recipe
    (decompose/recipes.py), which the CLI and the bench use."""

    method: str = "devit"  # a registered method (decompose/methods/)
    parts: int = 4
    partition: PartitionName = "random"
    part_budget: float | None = None  # fraction of teacher params for a part (before fleet shares)
    # An extra "other" logit trained on out-of-subset images: ED-ViT's recipe (None = on for ED-ViT, off for
    # DeViT, whose students in the paper never see another subset's images).
    other_class: bool | None = None
    joint_epochs: int = 0  # DeViT ensemble stage: also fine-tune the backbones for this many epochs
    prune_steps: int = 1  # >1: reach the budget in this many prunes, re-scoring between them
    part_recipe: PartRecipe = field(default_factory=PartRecipe)
    fusion_recipe: FusionRecipe = field(default_factory=FusionRecipe)
    seed: int = 0
    train_limit: int | None = None  # first N (class-balanced) training images, for tests and the demo
    test_limit: int | None = None
    # Images that score the channels for pruning: a backward pass each, which dominates pruning at 224².
    importance: ImportanceBatches = field(default_factory=ImportanceBatches)

    def has_other_class(self) -> bool:
        return get_method(self.method).other_class if self.other_class is None else self.other_class

    def budget(self) -> float:
        return self.part_budget if self.part_budget is not None else default_budget(self.method)

    def needs_targets(self) -> bool:
        """Teacher targets feed DeViT part training, the fusion head and the confusion partition."""
        part_targets = get_method(self.method).part_targets(self.part_recipe) != "none"
        return (
            (part_targets and self.part_recipe.epochs > 0)
            or self.fusion_recipe.epochs > 0
            or self.joint_epochs > 0
            or self.partition == "confusion"
        )

    def needs_flipped_targets(self) -> bool:
        """DeViT students that train on mirrored images learn the teacher's targets on those pixels."""
        method = get_method(self.method)
        return (
            method.part_targets(self.part_recipe) == "dekd"
            and method.part_flips(self.part_recipe)
            and self.part_recipe.epochs > 0
        )


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:12]


def targets_key(teacher_sha256: str, train_limit: int | None, seed: int) -> str:
    """The teacher targets' stage key; the part stages' keys include it."""
    return _key(teacher_sha256, train_limit, seed)


def targets_cache_names(tkey: str) -> tuple[str, str]:
    """File names of the teacher targets in cache/ (plain and on mirrored images): the name is the key, so targets
    made elsewhere from the same teacher and training images can be dropped in and are reused."""
    return f"targets-{tkey}.safetensors", f"targets-{tkey}-flipped.safetensors"


def _stage_partition(
    out: Path,
    opts: DecomposeOptions,
    y: torch.Tensor,
    targets: TeacherTargets | None,
    num_classes: int,
    teacher_sha256: str,
) -> list[list[int]]:
    path = out / "cache" / "partition.json"
    # The teacher's hash is part of the key: a confusion partition of the previous teacher is stale.
    key = _key(opts.partition, opts.parts, opts.seed, num_classes, teacher_sha256, "soft-confusion")
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["partition"]
    if opts.partition == "random":
        partition = random_partition(num_classes, opts.parts, opts.seed)
    else:
        assert targets is not None, "the confusion partition needs the teacher targets"
        probabilities = torch.softmax(targets.logits.float(), dim=1).numpy()
        partition = confusion_partition(soft_confusion(probabilities, y.numpy(), num_classes), opts.parts, opts.seed)
    validate_partition(partition, num_classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "partition": partition}))
    return partition


def _derive_part(
    teacher: torch.nn.Module,
    data_x: torch.Tensor,
    data_y: torch.Tensor,
    classes: list[int],
    opts: DecomposeOptions,
    budget_params: int,
) -> torch.nn.Module:
    """Class-wise pruning of the teacher, importance measured on this subset's images only."""
    inside = torch.isin(data_y, torch.tensor(classes))
    xs, ys = data_x[inside], data_y[inside]
    shape = get_method(opts.method).prune_shape
    model, start = teacher, count_params(teacher)
    # Iterative pruning: geometric steps to the budget, the Taylor scores re-measured on each smaller model
    # (channels that matter only once their neighbours are gone get a second look).
    for step in range(1, opts.prune_steps + 1):
        target = int(start * (budget_params / start) ** (step / opts.prune_steps))
        model, _ratio = prune_to_budget(model, xs, ys, target, shape, batches=opts.importance)
    return replace_head(model, teacher.head, classes, other_class=opts.has_other_class())


def _stage_targets(
    path: Path, teacher: torch.nn.Module, x: torch.Tensor, progress=None, label: str = "teacher targets"
) -> TeacherTargets:
    if path.exists():
        return TeacherTargets.load(path)
    task = progress.add_task(label, total=len(x)) if progress else None
    targets = compute_targets(teacher, x, progress=progress, task=task)
    targets.save(path)
    return targets


def _recipe_key(recipe: PartRecipe) -> dict:
    """The part recipe as a stage key; `flips` left to the method (None) keeps the key parts had before the
    setting existed, so their caches stay valid."""
    fields = asdict(recipe)
    if fields["flips"] is None:
        del fields["flips"]
    return fields


def _train_stage(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    classes: list[int],
    targets: TeacherTargets | None,
    opts: DecomposeOptions,
    i: int,
    progress=None,
    flipped_targets: TeacherTargets | None = None,
) -> list[float]:
    """Train one derived part on its subset; 0 epochs leaves it as pruned (no loss, no step)."""
    if opts.part_recipe.epochs == 0:
        return []
    wanted = get_method(opts.method).part_targets(opts.part_recipe)
    soft = wanted == "soft"
    data = subset_data(
        x,
        y,
        classes,
        targets if wanted != "none" else None,
        other_fraction=opts.part_recipe.other_fraction if opts.has_other_class() else 0.0,
        seed=opts.seed + i,
        soft_targets=soft,
        flipped_targets=flipped_targets if wanted == "dekd" else None,
    )
    steps = -(-len(data.x) // opts.part_recipe.batch_size) * opts.part_recipe.epochs
    task = progress.add_task(f"part {i} ({opts.method}, {len(classes)} classes)", total=steps) if progress else None
    return train_part(model, data, opts.method, opts.part_recipe, progress, task)


def _stage_parts(
    out: Path,
    opts: DecomposeOptions,
    card: TeacherCard,
    teacher: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    partition: list[list[int]],
    budgets: list[int],
    targets: TeacherTargets | None,
    tkey: str,
    device: torch.device,
    progress=None,
    flipped_targets: TeacherTargets | None = None,
) -> tuple[list[torch.nn.Module], list[PartSpec]]:
    """Derive and train every part at its parameter budget; a part whose stage key matches is reloaded."""
    parts: list[torch.nn.Module] = []
    specs: list[PartSpec] = []
    for i, classes in enumerate(partition):
        meta_path, weights_path = out / f"part{i}.json", out / f"part{i}.safetensors"
        budget_params = budgets[i]
        stage_key = _key(
            tkey,
            classes,
            opts.method,
            budget_params,
            _recipe_key(opts.part_recipe),
            opts.has_other_class(),
            f"round_to={ROUND_TO}",
            *([f"prune_steps={opts.prune_steps}"] if opts.prune_steps > 1 else []),
            *([asdict(opts.importance)] if opts.importance != ImportanceBatches() else []),
        )
        reloaded = _reload_part(out, i, stage_key)
        if reloaded is not None:
            spec, model = reloaded
            parts.append(PartFeatures(model).eval())
            specs.append(spec)
            continue
        model = _derive_part(teacher, x, y, classes, opts, budget_params).to(device)
        losses = _train_stage(model, x, y, classes, targets, opts, i, progress, flipped_targets)
        model = model.cpu().eval()
        arch = arch_of(model, card.arch)
        sha = save_weights(model, weights_path)
        spec = PartSpec(
            index=i,
            classes=classes,
            other_class=opts.has_other_class(),
            arch=arch,
            feature_dim=arch.embed_dim,
            params=count_params(model),
            flops=vit_flops(arch),
            weights=weights_path.name,
            weights_sha256=sha,
        )
        meta_path.write_text(
            json.dumps(
                {
                    "key": stage_key,
                    "spec": spec.model_dump(),
                    "first_loss": losses[0] if losses else None,
                    "last_loss": float(np.mean(losses[-20:])) if losses else None,
                }
            )
        )
        parts.append(PartFeatures(model).eval())
        specs.append(spec)
    return parts, specs


def _stage_files(out: Path, i: int, cached: bool) -> tuple[Path, Path]:
    folder = out / "cache" if cached else out
    return folder / f"part{i}.json", folder / f"part{i}.safetensors"


def _reload_part(out: Path, i: int, stage_key: str) -> tuple[PartSpec, torch.nn.Module] | None:
    """A trained part whose stage key matches: in the bundle folder, or in cache/ where joint fine-tuning keeps
    the parts it started from (then copied back, so the bundle's part file is this stage's output again)."""
    for cached in (False, True):
        meta_path, weights_path = _stage_files(out, i, cached)
        if not (meta_path.exists() and weights_path.exists()):
            continue
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != stage_key:
            continue
        spec = PartSpec.model_validate(meta["spec"])
        model = load_weights(build_vit(spec.arch), weights_path, spec.weights_sha256)
        if cached:
            shutil.copyfile(weights_path, out / spec.weights)
        return spec, model
    return None


def _keep_pre_joint(out: Path, i: int) -> None:
    """Move part i's stage output into cache/ before joint fine-tuning rewrites the bundle's copy: a re-run then
    reloads it and repeats only the fusion head and the joint epochs, never mixing fine-tuned weights into a
    stage that did not make them."""
    meta_path, weights_path = _stage_files(out, i, cached=False)
    cache_meta, cache_weights = _stage_files(out, i, cached=True)
    if meta_path.exists():
        cache_meta.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights_path, cache_weights)
        meta_path.replace(cache_meta)


def decompose_teacher(
    teacher_dir: Path,
    out: Path,
    opts: DecomposeOptions,
    fleet: FleetConfig | None = None,
    data_dir: Path | None = None,
    progress=None,
) -> BundleCard:
    t_start = time.perf_counter()
    device = pick_device()
    teacher, card = load_teacher(teacher_dir)
    pre = card.preprocessing
    # Converted to the teacher's input (ImageFolder data resized at load, e.g. 224² RGB for an imported ViT-B).
    train = load_dataset(card.dataset, "train", data_dir, pre).stratified_head(opts.train_limit, opts.seed)
    test = load_dataset(card.dataset, "test", data_dir, pre).head(opts.test_limit)
    x, y = to_tensors(train, pre)
    xt, yt = to_tensors(test, pre)
    num_classes = len(card.class_names)
    out.mkdir(parents=True, exist_ok=True)

    # 1. teacher targets
    tkey = targets_key(card.weights_sha256, opts.train_limit, opts.seed)
    plain_name, flipped_name = targets_cache_names(tkey)
    targets = _stage_targets(out / "cache" / plain_name, teacher, x, progress) if opts.needs_targets() else None
    flipped_targets = (
        _stage_targets(out / "cache" / flipped_name, teacher, x.flip(3), progress, "teacher targets (flipped images)")
        if opts.needs_flipped_targets()
        else None
    )

    # 2. partition
    partition = _stage_partition(out, opts, y, targets, num_classes, card.weights_sha256)

    # 3. parts, sized to their boards: a part that fits no board is pruned harder and retrained (ED-ViT's loop)
    teacher_params = count_params(teacher)
    shares = size_shares(fleet.boards, opts.parts) if fleet is not None else [1.0] * opts.parts
    # The most demanding subset (most classes) goes with the largest share.
    order = sorted(range(opts.parts), key=lambda i: -len(partition[i]))
    share_of = {part: shares[rank] for rank, part in enumerate(order)}
    budgets = [int(teacher_params * opts.budget() * share_of[i]) for i in range(opts.parts)]
    placement = None
    for attempt in range(MAX_PLACEMENT_ATTEMPTS):
        parts, specs = _stage_parts(
            out, opts, card, teacher, x, y, partition, budgets, targets, tkey, device, progress, flipped_targets
        )
        if fleet is None:
            break
        try:
            placement = place_parts([PartCost(s.index, s.params, s.flops) for s in specs], fleet.boards)
            break
        except PlacementError as exc:
            fitting = int(params_fitting(exc.available_mb or 0.0) * 0.95)  # margin: the bisection lands under
            if exc.part is None or fitting <= 0 or attempt == MAX_PLACEMENT_ATTEMPTS - 1:
                raise
            log.info("part %d fits no board (%s); pruning it to <= %d params and retraining", exc.part, exc, fitting)
            budgets[exc.part] = min(fitting, int(budgets[exc.part] * 0.9))

    # 4. fusion (0 epochs: the head keeps its seeded initialisation -- derive only)
    feats_test = part_features(parts, xt)
    method = get_method(opts.method)
    kind, hidden = method.fusion_kind, method.fusion_hidden(card.arch.embed_dim)
    head = get_fusion_head(kind).build([s.feature_dim for s in specs], hidden, num_classes)
    if opts.fusion_recipe.epochs > 0:
        assert targets is not None
        feats, fy, fcls, flogits = part_features(parts, x), y, targets.cls, targets.logits
        if opts.fusion_recipe.flip_views:
            # The teacher's targets of the unflipped image stand for the flipped one (it trained on flips).
            feats = torch.cat([feats, part_features(parts, x.flip(3))])
            fy, fcls, flogits = fy.repeat(2), fcls.repeat(2, 1), flogits.repeat(2, 1)
        steps = -(-len(feats) // opts.fusion_recipe.batch_size) * opts.fusion_recipe.epochs
        task = progress.add_task("fusion head", total=steps) if progress else None
        train_fusion(
            head, feats, fy, opts.fusion_recipe, teacher_cls=fcls, teacher_logits=flogits, progress=progress, task=task
        )
    if opts.joint_epochs > 0:
        assert targets is not None
        for spec in specs:
            _keep_pre_joint(out, spec.index)
        steps = -(-len(x) // opts.fusion_recipe.batch_size) * opts.joint_epochs
        task = progress.add_task("joint fine-tune (parts + fusion)", total=steps) if progress else None
        train_joint(
            head,
            parts,
            x,
            y,
            opts.fusion_recipe,
            opts.joint_epochs,
            teacher_cls=targets.cls,
            teacher_logits=targets.logits,
            progress=progress,
            task=task,
        )
        for spec, part in zip(specs, parts):
            spec.weights_sha256 = save_weights(part.vit, out / spec.weights)
        feats_test = part_features(parts, xt)
    fusion_sha = save_weights(head, out / "fusion.safetensors")

    # 5. evaluation + card
    teacher_top1 = evaluate(teacher, xt, yt).top1
    fused = fused_accuracy(head, feats_test, yt)
    metrics: dict[str, float] = {
        "teacher_top1": teacher_top1,
        "fused_top1": fused,
        "delta_pt": 100 * (fused - teacher_top1),
        "teacher_params": float(teacher_params),
        "largest_part_params": float(max(s.params for s in specs)),
        "largest_part_ratio": max(s.params for s in specs) / teacher_params,
        "decompose_seconds": time.perf_counter() - t_start,
        "test_images": float(len(yt)),
    }
    for i in range(len(specs)):
        metrics[f"top1_without_part{i}"] = fused_accuracy(head, feats_test, yt, missing=i)
    fusion_spec = FusionSpec(
        kind=kind,
        feature_dims=[s.feature_dim for s in specs],
        hidden_dim=hidden,
        num_classes=num_classes,
        part_dropout=opts.fusion_recipe.part_dropout,
        weights_sha256=fusion_sha,
    )
    bundle_id = _key(*(s.weights_sha256 for s in specs), fusion_sha)
    bundle = BundleCard(
        bundle_id=bundle_id,
        method=opts.method,
        dataset=card.dataset,
        class_names=card.class_names,
        partition=partition,
        teacher=TeacherRef(
            path=str(teacher_dir.resolve()),
            weights_sha256=card.weights_sha256,
            params=teacher_params,
            flops=vit_flops(card.arch),
            test_top1=teacher_top1,
        ),
        parts=specs,
        fusion=fusion_spec,
        preprocessing=pre,
        placement=placement,
        metrics=metrics,
        recipe=json.loads(json.dumps(asdict(opts), default=str)),
    )
    write_card(out, bundle)
    return bundle


def demo_bundle(work_dir: Path, progress=None, parts: int = 2) -> Path:
    """A small teacher + K-part DeViT bundle for `vitfleet demo`, built once and cached in work_dir."""
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.decompose.teacher import TrainRecipe, arch_for_preset, train_teacher

    bundle_dir = work_dir / f"bundle-devit-{parts}"
    if (bundle_dir / "bundle.json").exists():
        read_bundle(bundle_dir)  # refuses a stale or foreign bundle instead of demoing it
        return bundle_dir
    teacher_dir = work_dir / "teacher"
    if not (teacher_dir / "teacher.json").exists():
        train = load_dataset("fashion-mnist", "train").stratified_head(12000)
        test = load_dataset("fashion-mnist", "test")
        arch = arch_for_preset("tiny", train.num_classes)
        recipe = TrainRecipe(epochs=4, lr=3e-3, augment=False, warmup_epochs=0.25)
        train_teacher(train, test, arch, recipe, teacher_dir, "fashion-mnist", "trained:tiny", progress)
    opts = DecomposeOptions(
        method="devit",
        parts=parts,
        part_budget=0.3,
        train_limit=12000,
        part_recipe=PartRecipe(epochs=3),
        fusion_recipe=FusionRecipe(epochs=8),
    )
    decompose_teacher(teacher_dir, bundle_dir, opts, progress=progress)
    return bundle_dir
