"""Engines vs the PyTorch bundle on real test images: does the deployed fleet still decide like the bundle?

Per part: cosine similarity between engine and PyTorch CLS features, image by image (mean and worst).
Fused: the engines' features through the engine fusion head vs the PyTorch pipeline: top-1 agreement and
both accuracies. Also the fusion engine alone on PyTorch features (max |logit difference|).
Pass/fail: mean per-part cosine and fused agreement against the thresholds below.
The PyTorch side comes from the bundle, or (no bundle, e.g. on a Jetson without torch) from the
reference.npz that a jetson build saved.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import read_manifest

# (min mean cosine per part, min fused top-1 agreement). fp16/int8 lose a little; fp32 must be ~exact.
THRESHOLDS: dict[str, tuple[float, float]] = {"fp32": (0.9999, 0.999), "fp16": (0.999, 0.995), "int8": (0.98, 0.98)}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def check_engines(
    engines_dir: Path,
    bundle_dir: Path | None,
    n_images: int = 1000,
    data_dir: str | os.PathLike[str] | None = None,
    backend: str = "onnxruntime",
    precision: str | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    from vitfleet.engines.reference import reference_from_bundle, reference_from_file
    from vitfleet.engines.runtime.backends import load_fusion_engine, load_part_engine

    engines_dir = Path(engines_dir)
    manifest = read_manifest(engines_dir)
    if bundle_dir is not None:
        ref, _ = reference_from_bundle(Path(bundle_dir), n_images, data_dir)
    else:
        ref = reference_from_file(engines_dir, n_images)
    if manifest.bundle_id != ref.bundle_id:
        raise EngineError(
            f"{engines_dir} was built from bundle {manifest.bundle_id!r} but {bundle_dir} is "
            f"{ref.bundle_id!r}; check against the bundle the engines came from"
        )
    precision = precision or manifest.precision
    if precision not in THRESHOLDS:
        raise EngineError(f"unknown precision {precision!r}; use one of {', '.join(THRESHOLDS)}")
    min_cos, min_agree = THRESHOLDS[precision]
    x = ref.images
    mask = np.ones((len(x), manifest.num_parts), np.float32)

    parts, engine_feats, failures = [], [], []
    for i in range(manifest.num_parts):
        engine = load_part_engine(engines_dir, i, backend=backend, threads=threads, precision=precision)
        got = engine.infer(x)
        cos = cosine_rows(got, ref.features[i])
        ok = bool(cos.mean() >= min_cos)
        if not ok:
            failures.append(f"part {i}: mean cosine {cos.mean():.5f} < {min_cos}")
        parts.append(
            {
                "part": i,
                "engine": engine.label,
                "cosine_mean": float(cos.mean()),
                "cosine_min": float(cos.min()),
                "max_abs_diff": float(np.abs(got - ref.features[i]).max()),
                "pass": ok,
            }
        )
        engine_feats.append(got)

    head = load_fusion_engine(engines_dir, backend=backend, threads=threads)
    head_only = head.fuse(np.concatenate(ref.features, 1), mask)
    engine_logits = head.fuse(np.concatenate(engine_feats, 1), mask)
    torch_pred, engine_pred = ref.logits.argmax(1), engine_logits.argmax(1)
    agreement = float((torch_pred == engine_pred).mean())
    if agreement < min_agree:
        failures.append(f"fused top-1 agreement {agreement:.4f} < {min_agree}")
    acc_torch, acc_engine = float((torch_pred == ref.labels).mean()), float((engine_pred == ref.labels).mean())
    return {
        "engines_dir": str(engines_dir),
        "reference": ref.source,
        "backend": backend,
        "precision": precision,
        "images": int(len(x)),
        "parts": parts,
        "fusion_engine": head.label,
        "fusion_max_abs_logit_diff": float(np.abs(head_only - ref.logits).max()),
        "fused_agreement": agreement,
        "fused_accuracy_engine": acc_engine,
        "fused_accuracy_torch": acc_torch,
        "accuracy_delta_pt": 100 * (acc_engine - acc_torch),
        "thresholds": {"cosine_mean": min_cos, "fused_agreement": min_agree},
        "pass": not failures,
        "failures": failures,
    }
