"""`vitfleet teacher`, `vitfleet eval`: the model-side commands."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from vitfleet.choices import ComputePrecision, LrSchedule, Partition
from vitfleet.console import emit, progress_bar, user_errors
from vitfleet.decompose.methods import get_method, method_names  # torch-free registry, like presets_help
from vitfleet.decompose.vit_arch import presets_help  # pydantic only: `--help` stays instant, no torch/timm
from vitfleet.errors import UserError

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data folder (default: $VITFLEET_DATA or the Debian package's folder)"),
]
Json = Annotated[bool, typer.Option("--json", help="print figures as JSON")]
# The registered methods when the CLI is built (plugins load first: vitfleet/plugins.py), so --help lists them.
MethodChoice = Enum("MethodChoice", {name: name for name in method_names()}, type=str)  # type: ignore[misc]


def _defaults(field: str) -> str:
    """Each registered method's default for a flag (decompose/methods/)."""
    values = {m: getattr(get_method(m).defaults, field) for m in method_names()}
    shown = {m: round(v, 4) if isinstance(v, float) else v for m, v in values.items()}
    return "default: " + ", ".join(f"{m} {v}" for m, v in shown.items())


def _vit_kwargs(text: str) -> dict:
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--vit-kwargs is not valid JSON ({exc.msg}); write it like '{{\"img_size\": 64}}'") from exc
    if not isinstance(overrides, dict):
        raise UserError(f"--vit-kwargs must be a JSON object, got {text!r}; write it like '{{\"img_size\": 64}}'")
    return overrides


def _floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated numbers, e.g. {flag} 0.485,0.456,0.406; got {text!r}") from None


@user_errors
def teacher(
    out: Annotated[Path, typer.Option(help="output folder (teacher.safetensors + teacher.json)")] = Path(
        "runs/teacher"
    ),
    dataset: Annotated[
        str,
        typer.Option(
            help="fashion-mnist, cifar10, cifar100 or folder:/path (ImageFolder with "
            "train/<class>/ and test/<class>/, any image size or mode)"
        ),
    ] = "fashion-mnist",
    preset: Annotated[
        str | None,
        typer.Option(
            help="architecture when training (default: fmnist for "
            "Fashion-MNIST, small otherwise). "
            + presets_help()
            + ". On other image sizes the patch keeps the token grid"
        ),
    ] = None,
    img_size: Annotated[
        int | None,
        typer.Option(
            "--img-size",
            min=8,
            help="train at N x N pixels (default: 28 "
            "Fashion-MNIST, 32 CIFAR, folders: the images' median shorter "
            "side rounded to a multiple of 8, 16..224); the patch follows",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 15,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="per-image horizontal flips")] = True,
    translate_pixels: Annotated[
        int, typer.Option(min=0, help="augmentation: also shift each batch by up to N pixels")
    ] = 0,
    lr: float = 1e-3,
    seed: int = 0,
    precision: Annotated[
        ComputePrecision,
        typer.Option(
            case_sensitive=False, help="forward pass: auto (bf16 where the CPU/GPU runs it natively), fp32 or bf16"
        ),
    ] = ComputePrecision.auto,
    vit_kwargs: Annotated[
        str,
        typer.Option(
            "--vit-kwargs",
            help="JSON architecture overrides, e.g. "
            '\'{"img_size": 64, "patch_size": 8}\'; in_chans defaults to the '
            "data set's (1 Fashion-MNIST, 3 RGB)",
        ),
    ] = "{}",
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="import this timm checkpoint (.safetensors, or a weights-only .pth/.pt) instead of training"),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="timm model name of --checkpoint, e.g. vit_base_patch16_224 or deit_small_patch16_224"),
    ] = None,
    mean: Annotated[
        str | None,
        typer.Option(
            help="import: per-channel mean, e.g. 0.485,0.456,0.406 (default: timm's pretrained_cfg of --arch)"
        ),
    ] = None,
    std: Annotated[str | None, typer.Option(help="import: per-channel std (default: timm's pretrained_cfg)")] = None,
    train_limit: Annotated[int | None, typer.Option(help="use N class-balanced training images")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Train the teacher ViT (or import a timm checkpoint) and write teacher.json + teacher.safetensors."""
    from vitfleet.datasets import class_names_of, dataset_reference, default_model_size, load_dataset, native_shape

    overrides = _vit_kwargs(vit_kwargs)
    if img_size is not None and overrides.setdefault("img_size", img_size) != img_size:
        raise UserError(f"--img-size {img_size} and --vit-kwargs img_size {overrides['img_size']} disagree; give one")
    ref = dataset_reference(dataset)  # folders are stored by absolute path so later steps reload them anywhere
    class_names = class_names_of(ref, data_dir)  # before importing torch: a missing data set fails fast
    if checkpoint is not None:
        if not arch:
            raise UserError("--checkpoint needs --arch <timm model name>, e.g. --arch vit_base_patch16_224")
        if preset is not None:
            raise UserError(
                "--preset chooses a from-scratch architecture; an import takes it from --arch and "
                "--vit-kwargs: drop --preset"
            )
        from vitfleet.decompose.teacher import load_timm_checkpoint, write_imported_teacher

        model, vit, pre = load_timm_checkpoint(
            checkpoint, arch, len(class_names), ref, overrides, _floats(mean, "--mean"), _floats(std, "--std")
        )
        test = load_dataset(ref, "test", data_dir, pre)
        card = write_imported_teacher(model, vit, pre, arch, out, ref, class_names, test)
    else:
        if mean is not None or std is not None or arch is not None:
            raise UserError(
                "--arch, --mean and --std apply to --checkpoint imports; a trained teacher uses the "
                "data set's statistics and --preset / --vit-kwargs"
            )
        from vitfleet.decompose.teacher import TrainRecipe, arch_for_preset, preprocessing_for, train_teacher

        preset = preset or ("fmnist" if ref == "fashion-mnist" else "small")
        size = int(overrides.pop("img_size", None) or default_model_size(ref, data_dir))
        chans = int(overrides.pop("in_chans", None) or native_shape(ref, data_dir).channels)
        vit = arch_for_preset(preset, len(class_names), overrides, img_size=size, in_chans=chans)
        pre = preprocessing_for(ref, vit)
        train = load_dataset(ref, "train", data_dir, pre)
        if train.class_names != class_names:
            raise UserError(
                f"{ref}: train/ has classes {train.class_names} but test/ has {class_names}; give both "
                "splits the same class folders"
            )
        train = train.stratified_head(train_limit)
        test = load_dataset(ref, "test", data_dir, pre)
        recipe = TrainRecipe(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            precision=precision.value,
            augment=augment,
            translate_pixels=translate_pixels,
        )
        with progress_bar(disable=as_json) as progress:
            card = train_teacher(train, test, vit, recipe, out, ref, f"trained:{preset}", progress)
    emit(
        {
            "out": str(out),
            "source": card.source,
            "dataset": card.dataset,
            "input": f"{card.preprocessing.size}x{card.preprocessing.size}x{card.preprocessing.channels}",
            "patch_size": card.arch.patch_size,
            **card.metrics,
        },
        as_json,
        title="teacher",
    )


@user_errors
def evaluate_cmd(
    teacher: Annotated[Path | None, typer.Option(help="teacher folder")] = None,
    bundle: Annotated[Path | None, typer.Option(help="bundle folder (see `vitfleet decompose`)")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate on the first N test images only")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Report top-1, parameters and FLOPs of a teacher or a bundle on the test split."""
    from vitfleet.datasets import load_test_split_for
    from vitfleet.decompose.evaluation import evaluate_bundle, evaluate_teacher

    if (teacher is None) == (bundle is None):
        raise UserError("give exactly one of --teacher DIR or --bundle DIR")
    if teacher is not None:
        from vitfleet.decompose.teacher import read_card

        card = read_card(teacher)
        test = load_test_split_for(card.dataset, card.preprocessing, data_dir).head(limit)
        emit(evaluate_teacher(teacher, test), as_json, title=f"teacher {teacher}")
    else:
        from vitfleet.decompose.bundle import read_bundle

        bcard = read_bundle(bundle)
        test = load_test_split_for(bcard.dataset, bcard.preprocessing, data_dir).head(limit)
        emit(evaluate_bundle(bundle, test), as_json, title=f"bundle {bundle}")


def _three_weights(text: str, flag: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise UserError(f"{flag} takes three comma-separated numbers for q, k and v, e.g. 0.2,0.1,0.3; got {text!r}")
    return values  # type: ignore[return-value]


@user_errors
def decompose(
    teacher: Annotated[Path, typer.Option(help="teacher folder (from `vitfleet teacher`)")],
    out: Annotated[Path, typer.Option(help="bundle folder to write")],
    method: Annotated[
        MethodChoice, typer.Option(case_sensitive=False, help="; ".join(get_method(m).summary for m in method_names()))
    ] = MethodChoice("devit"),
    parts: Annotated[int, typer.Option(min=1, help="number of sub-models K (one per board)")] = 4,
    partition: Annotated[
        Partition | None,
        typer.Option(
            case_sensitive=False,
            help="random (both papers) or "
            "confusion (co-locate classes the teacher mixes up); " + _defaults("partition"),
        ),
    ] = None,
    fleet: Annotated[Path | None, typer.Option(help="fleet.yaml: size parts to board speed, place them")] = None,
    part_budget: Annotated[
        float | None,
        typer.Option(help="part size as a fraction of the teacher's params; " + _defaults("part_budget")),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="training epochs per part (0 = derive only: pruned, "
            "untrained parts, e.g. to size an untrained teacher); " + _defaults("part_epochs"),
        ),
    ] = None,
    part_lr: Annotated[
        float | None, typer.Option(min=0.0, help="part training peak learning rate; " + _defaults("part_lr"))
    ] = None,
    part_lr_schedule: Annotated[
        LrSchedule, typer.Option(case_sensitive=False, help="how the part learning rate falls after its warm-up")
    ] = LrSchedule.cosine,
    part_warmup: Annotated[
        float, typer.Option(help="fraction of part training steps spent warming the learning rate up")
    ] = 0.05,
    dekd_alpha: Annotated[
        float, typer.Option(help="DeViT: weight of the teacher's hard labels against the true labels in DEKD")
    ] = 0.5,
    dekd_gammas: Annotated[str, typer.Option(help="DeViT: DEKD relation-KL weights for q,k,v")] = "0.2,0.1,0.3",
    part_kd_temperature: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="ED-ViT: distil the teacher's soft "
            "logits (part classes + other) at this temperature; "
            "0 = labels only; " + _defaults("part_kd_temperature"),
        ),
    ] = None,
    other_fraction: Annotated[
        float, typer.Option(min=0.0, help="ED-ViT: out-of-subset images per in-subset image for the 'other' logit")
    ] = 0.25,
    prune_steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="prune to the budget in N steps, re-scoring "
            "channels between them (1 = one shot); " + _defaults("prune_steps"),
        ),
    ] = None,
    fusion_epochs: Annotated[
        int | None,
        typer.Option(min=0, help="fusion head epochs (0 = untrained head); " + _defaults("fusion_epochs")),
    ] = None,
    fusion_soft_temperature: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="fusion head: learn the "
            "teacher's soft logits at this temperature "
            "(0 = its hard labels); " + _defaults("fusion_soft_temperature"),
        ),
    ] = None,
    fusion_flip_views: Annotated[
        bool | None,
        typer.Option(
            "--fusion-flip-views/--no-fusion-flip-views",
            help="fusion head: also train on the features of "
            "flipped training images; " + _defaults("fusion_flip_views"),
        ),
    ] = None,
    part_dropout: Annotated[
        float | None,
        typer.Option(min=0.0, max=0.9, help="fusion training part dropout; " + _defaults("part_dropout")),
    ] = None,
    joint_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="fine-tune the parts jointly with the fusion "
            "head for N epochs (0 = frozen backbones); " + _defaults("joint_epochs"),
        ),
    ] = None,
    other_class: Annotated[
        bool | None,
        typer.Option(
            "--other-class/--no-other-class",
            help="an extra 'other' "
            "logit trained on other parts' images (default: on for both "
            "methods: ED-ViT's recipe, and DeViT's since the "
            "accuracy ablation, docs/benchmarks.md)",
        ),
    ] = None,
    part_flips: Annotated[
        bool | None,
        typer.Option(
            "--part-flips/--no-part-flips",
            help="train parts on "
            "randomly mirrored images, the teacher's augmentation (DeViT: "
            "with the teacher's targets on the mirrored pixels; default: "
            "on for ED-ViT, off for DeViT)",
        ),
    ] = None,
    seed: int = 0,
    train_limit: Annotated[int | None, typer.Option(help="use N class-balanced training images")] = None,
    test_limit: Annotated[int | None, typer.Option(help="evaluate on the first N test images")] = None,
    importance_batch: Annotated[
        int, typer.Option(min=1, help="pruning: images per importance batch (small for 224² teachers)")
    ] = 128,
    importance_batches: Annotated[int, typer.Option(min=1, help="pruning: importance batches per part")] = 8,
    relation_kl: Annotated[
        str | None,
        typer.Option(
            help="DeViT: q/k/v relation KL reduction, row-mean or "
            "batchmean (the DeViT reference: summed over token "
            "rows); " + _defaults("relation_kl")
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Split a teacher into K class-specialised sub-ViTs + a fusion head (DeViT or ED-ViT) and write a bundle."""
    from vitfleet.decompose.default_options import default_options
    from vitfleet.decompose.pipeline import decompose_teacher
    from vitfleet.decompose.prune import ImportanceBatches
    from vitfleet.fleet_config import load_fleet

    opts = default_options(
        method.value,
        parts,
        part_budget=part_budget,
        epochs=epochs,
        part_lr=part_lr,
        part_lr_schedule=part_lr_schedule.value,
        part_warmup=part_warmup,
        dekd_alpha=dekd_alpha,
        dekd_gammas=_three_weights(dekd_gammas, "--dekd-gammas"),
        part_kd_temperature=part_kd_temperature,
        other_fraction=other_fraction,
        prune_steps=prune_steps,
        fusion_epochs=fusion_epochs,
        fusion_soft_temperature=fusion_soft_temperature,
        fusion_flip_views=fusion_flip_views,
        part_dropout=part_dropout,
        relation_kl=relation_kl,
        partition=None if partition is None else partition.value,
        other_class=other_class,
        joint_epochs=joint_epochs,
        part_flips=part_flips,
        seed=seed,
        train_limit=train_limit,
        test_limit=test_limit,
        importance=ImportanceBatches(importance_batch, importance_batches),
    )
    fleet_cfg = load_fleet(fleet) if fleet is not None else None
    with progress_bar(disable=as_json) as progress:
        card = decompose_teacher(teacher, out, opts, fleet_cfg, data_dir, progress)
    summary = {
        "out": str(out),
        "bundle_id": card.bundle_id,
        "method": card.method,
        "parts": card.num_parts,
        "partition": card.partition,
        **card.metrics,
        "part_params": [p.params for p in card.parts],
        "feature_dims": [p.feature_dim for p in card.parts],
    }
    if card.placement:
        summary["placement"] = card.placement
    emit(summary, as_json, title="decompose")
