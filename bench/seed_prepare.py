"""Seed-scale preparation, each step cached by its inputs: teacher ONNX (fp32 + int8), the ViT-Ti reference ONNX,
bundles (DeViT, ED-ViT; K = 2/4/8; derived only, 0 epochs) and their engines (fp32 + int8 QDQ)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitfleet.bench.seed_settings import SeedSettings, SeedTeacher


@dataclass(frozen=True)
class SingleModel:
    """One model on one board (teacher or reference): ONNX file per precision."""

    label: str
    params: int
    files: dict[str, Path]  # precision -> .onnx


@dataclass(frozen=True)
class SeedBundle:
    teacher: str
    method: str
    parts: int
    bundle_dir: Path
    engines_dir: Path
    budget: float
    seconds: dict[str, float]  # decompose / engines wall time of this run (0 when cached)


def _stamped(folder: Path, key: str) -> bool:
    stamp = folder / "seed-stamp.json"
    return stamp.exists() and json.loads(stamp.read_text()).get("key") == key


def _stamp(folder: Path, key: str) -> None:
    (folder / "seed-stamp.json").write_text(json.dumps({"key": key}))


def export_single(
    model,
    label: str,
    params: int,
    image_shape: tuple[int, int, int],
    folder: Path,
    calibration: np.ndarray,
    precisions: list[str],
    key: str,
) -> SingleModel:
    """fp32 ONNX (legacy exporter, as engines/ does) and, when asked, symmetric QDQ int8 from it."""
    from vitfleet.engines.build.export import export_teacher
    from vitfleet.engines.build.precision import Int8Settings, to_int8

    folder.mkdir(parents=True, exist_ok=True)
    files = {"fp32": folder / "model.onnx"}
    if "int8" in precisions:
        files["int8"] = folder / "model.int8.onnx"
    if not _stamped(folder, key) or not all(p.exists() for p in files.values()):
        export_teacher(model, image_shape, files["fp32"], f"seed-{label}")
        if "int8" in files:
            to_int8(files["fp32"], files["int8"], calibration, Int8Settings(), "cpu")
        _stamp(folder, key)
    return SingleModel(label, params, files)


def prepare_teacher_onnx(s: SeedSettings, teacher_dir: Path, calibration: np.ndarray) -> SingleModel:
    from vitfleet.decompose.teacher import load_teacher
    from vitfleet.decompose.vit_arch import count_params

    model, card = load_teacher(teacher_dir)
    key = f"{card.weights_sha256}:{s.calib_images}:{s.teacher_int8}"
    precisions = ["fp32", "int8"] if s.teacher_int8 else ["fp32"]
    image_shape = (card.preprocessing.channels, card.preprocessing.size, card.preprocessing.size)
    return export_single(
        model, card.source, count_params(model), image_shape, teacher_dir / "onnx", calibration, precisions, key
    )


def prepare_reference(s: SeedSettings, calibration: np.ndarray) -> SingleModel:
    """The published boards' model (ViT-Ti/16, random init, the seed's class count) in both precisions."""
    from vitfleet.bench.seed_data import INIT, random_timm
    from vitfleet.decompose.vit_arch import count_params

    ref: SeedTeacher = s.reference
    model = random_timm(ref, s.classes)
    key = json.dumps([ref.model_dump(), s.classes, s.calib_images, INIT])
    return export_single(
        model,
        ref.label,
        count_params(model),
        (3, s.image_size, s.image_size),
        s.runs / f"reference-{ref.timm_name}",
        calibration,
        ["fp32", "int8"],
        key,
    )


def prepare_bundle(
    s: SeedSettings, teacher_label: str, teacher_dir: Path, method: str, parts: int, progress=None
) -> SeedBundle:
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.decompose.fusion_training import FusionRecipe
    from vitfleet.decompose.pipeline import DecomposeOptions, decompose_teacher, default_budget
    from vitfleet.decompose.prune import ImportanceBatches
    from vitfleet.decompose.students import PartRecipe
    from vitfleet.engines.build.from_bundle import build_engines

    budget = s.budget(method) or default_budget(method)
    bundle_dir = teacher_dir.parent / f"bundle-{teacher_dir.name.removeprefix('teacher-')}-{method}-{parts}"
    engines_dir = bundle_dir.parent / f"engines-{bundle_dir.name.removeprefix('bundle-')}"
    opts = DecomposeOptions(
        method=method,
        parts=parts,
        part_budget=budget,  # type: ignore[arg-type]
        part_recipe=PartRecipe(epochs=0),
        fusion_recipe=FusionRecipe(epochs=0),
        test_limit=s.classes,  # untrained: the card's accuracy figures mean nothing here
        importance=ImportanceBatches(s.importance_batch, s.importance_batches),
    )
    seconds = {"decompose": 0.0, "engines": 0.0}
    from vitfleet.decompose.prune import ROUND_TO
    from vitfleet.decompose.teacher import read_card

    bundle_key = json.dumps([read_card(teacher_dir).weights_sha256, repr(opts), f"round_to={ROUND_TO}"])
    if not _stamped(bundle_dir, bundle_key) or not (bundle_dir / "bundle.json").exists():
        t0 = time.monotonic()
        decompose_teacher(teacher_dir, bundle_dir, opts, progress=progress)  # parts cached by their stage keys
        _stamp(bundle_dir, bundle_key)
        seconds["decompose"] = round(time.monotonic() - t0, 1)
    card = read_bundle(bundle_dir)
    key = f"{card.bundle_id}:{s.calib_images}"
    if not _stamped(engines_dir, key):
        t0 = time.monotonic()
        # `vitfleet engines build --precision int8` writes part{i}.onnx (fp32) + part{i}.int8.onnx + fusion.onnx.
        build_engines(
            bundle_dir,
            engines_dir,
            precision="int8",
            target="cpu",
            calib_images=s.calib_images,
            progress=progress,
            export_teacher=False,
        )
        _stamp(engines_dir, key)
        seconds["engines"] = round(time.monotonic() - t0, 1)
    return SeedBundle(teacher_label, method, parts, bundle_dir, engines_dir, budget, seconds)
