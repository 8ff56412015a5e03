"""Seed-scale inputs: a small synthetic RGB ImageFolder and random-init timm teachers imported the user's way.

The teachers are untrained, so the images only need the right shape: smooth random colour fields (JPEG-compressible
like a photo, unlike white noise) with a class-dependent tint. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.bench.seed_settings import SeedSettings, SeedTeacher


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:12]


def synthetic_image(rng: np.random.Generator, size: int, tint: np.ndarray):  # -> uint8 (size, size, 3) BGR
    import cv2

    coarse = rng.uniform(0, 255, (max(2, size // 16), max(2, size // 16), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    detail = rng.normal(0, 12, (size, size, 3)).astype(np.float32)
    return np.clip(0.6 * smooth + 0.4 * tint + detail, 0, 255).astype(np.uint8)


def ensure_image_folder(s: SeedSettings) -> Path:
    """runs/data/{train,test}/class_<c>/<n>.png, made once per (size, classes, counts)."""
    import cv2

    root = s.runs / "data"
    key = _key(s.image_size, s.classes, s.train_per_class, s.test_per_class)
    stamp = root / "stamp.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return root
    rng = np.random.default_rng(0)
    tints = rng.uniform(0, 255, (s.classes, 3))
    for split, count in (("train", s.train_per_class), ("test", s.test_per_class)):
        for c in range(s.classes):
            folder = root / split / f"class_{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.png"):
                stale.unlink()
            for n in range(count):
                cv2.imwrite(str(folder / f"{n:03d}.png"), synthetic_image(rng, s.image_size, tints[c]))
    stamp.write_text(json.dumps({"key": key}))
    return root


# timm initialises every bias to 0 and every LayerNorm to 1: the ONNX exporter then folds the identical tensors into
# one shared initializer, a graph no trained checkpoint produces, on which onnxruntime's QDQ quantizer writes an
# invalid Gemm (a shared [192] bias turned into a Transpose output: "Gemm: Invalid bias shape for broadcast" at
# inference). A little noise on the 1-D parameters keeps each tensor distinct, as in a trained model.
INIT = "timm default init + N(0, 0.02) on 1-D parameters"


def random_timm(t: SeedTeacher, num_classes: int, seed: int = 0):  # -> timm VisionTransformer (eval)
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(t.timm_name, pretrained=False, num_classes=num_classes, **t.timm_kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.02)
    return model


@dataclass(frozen=True)
class ImportedTeacher:
    folder: Path
    via: str  # "vitfleet teacher --checkpoint" or the fallback's reason
    checkpoint_bytes: int


def _teacher_cli(checkpoint: Path, t: SeedTeacher, data: Path, out: Path) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "vitfleet.cli",
        "teacher",
        "--checkpoint",
        str(checkpoint),
        "--arch",
        t.timm_name,
        "--dataset",
        f"folder:{data}",
        "--out",
        str(out),
        "--vit-kwargs",
        json.dumps(t.timm_kwargs),
        "--json",
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=1800)


def import_teacher(s: SeedSettings, t: SeedTeacher, data: Path) -> ImportedTeacher:
    """Random-init timm model -> .safetensors -> `vitfleet teacher --checkpoint` (the user's path). When the CLI
    fails, `decompose.teacher.import_checkpoint` is called directly and the failure is kept for the report."""
    from safetensors.torch import save_file

    key = _key(t.model_dump(), s.classes, s.image_size, INIT)
    folder = s.runs / f"teacher-{t.timm_name}"
    stamp = folder / "seed-stamp.json"
    checkpoint = s.runs / "checkpoints" / f"{t.timm_name}-{key}.safetensors"
    if stamp.exists() and (folder / "teacher.json").exists():
        saved = json.loads(stamp.read_text())
        if saved.get("key") == key:
            return ImportedTeacher(folder, saved["via"], int(saved["checkpoint_bytes"]))
    if not checkpoint.exists():
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        model = random_timm(t, s.classes)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    done = _teacher_cli(checkpoint, t, data, folder)
    via = "vitfleet teacher --checkpoint"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        via = (
            f"decompose.teacher.import_checkpoint (the CLI exited {done.returncode}: "
            f"{lines[-1] if lines else 'no output'})"
        )
        _import_in_process(checkpoint, t, data, folder, s)
    stamp.write_text(json.dumps({"key": key, "via": via, "checkpoint_bytes": checkpoint.stat().st_size}))
    return ImportedTeacher(folder, via, checkpoint.stat().st_size)


def _import_in_process(checkpoint: Path, t: SeedTeacher, data: Path, out: Path, s: SeedSettings) -> None:
    from vitfleet.datasets import load_dataset
    from vitfleet.decompose.teacher import import_checkpoint

    test = load_dataset(f"folder:{data}", "test", size=s.image_size, channels=3)
    import_checkpoint(checkpoint, t.timm_name, out, f"folder:{data}", test.class_names, test, t.timm_kwargs)


def calibration_images(data: Path, s: SeedSettings, pre: Any) -> np.ndarray:
    """Normalised float32 NCHW training images for int8 calibration (the first `calib_images`, class-balanced)."""
    from vitfleet.datasets import load_dataset

    train = load_dataset(f"folder:{data}", "train", None, pre)
    return pre.normalize(train.stratified_head(s.calib_images).images)
