"""The PyTorch side of the check, either computed from the bundle (workstation) or read from
reference.npz (a Jetson without torch): test images, labels, per-part features, fused logits.

`vitfleet engines build --target jetson` writes reference.npz next to the ONNX files, so `make
check-jetson` needs only JetPack's TensorRT + pycuda and vitfleet's board dependencies on the board.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitfleet.engines.runtime.errors import EngineError

REFERENCE_NAME = "reference.npz"


@dataclass(frozen=True)
class Reference:
    bundle_id: str
    images: np.ndarray  # float32 (N, C, H, W), normalised
    labels: np.ndarray  # int64 (N,)
    features: list[np.ndarray]  # per part (N, D_i), PyTorch
    logits: np.ndarray  # (N, C), PyTorch fusion of the PyTorch features, all parts present
    source: str


def reference_from_bundle(
    bundle_dir: Path, n_images: int, data_dir: str | os.PathLike[str] | None = None
) -> tuple[Reference, np.ndarray]:
    """Returns the reference and the uint8 images it was computed from."""
    from vitfleet.datasets import load_dataset
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.engines.build.torch_reference import torch_fusion_engine, torch_part_engine

    card = read_bundle(bundle_dir)
    pre = card.preprocessing
    data = load_dataset(card.dataset, "test", data_dir, pre).head(n_images)
    x = pre.normalize(data.images)
    feats = [torch_part_engine(bundle_dir, i).infer(x) for i in range(card.num_parts)]
    mask = np.ones((len(x), card.num_parts), np.float32)
    logits = torch_fusion_engine(bundle_dir).fuse(np.concatenate(feats, 1), mask)
    return Reference(card.bundle_id, x, data.labels, feats, logits, f"pytorch bundle {bundle_dir}"), data.images


def write_reference(
    bundle_dir: Path, out_dir: Path, n_images: int, data_dir: str | os.PathLike[str] | None = None
) -> Path:
    ref, raw = reference_from_bundle(bundle_dir, n_images, data_dir)
    path = Path(out_dir) / REFERENCE_NAME
    arrays = {f"features_{i}": f for i, f in enumerate(ref.features)}
    np.savez_compressed(
        path, bundle_id=np.array(ref.bundle_id), images_uint8=raw, labels=ref.labels, logits=ref.logits, **arrays
    )
    return path


def reference_from_file(engines_dir: Path, n_images: int) -> Reference:
    from vitfleet.engines.runtime.manifest import read_manifest

    manifest = read_manifest(engines_dir)
    path = Path(engines_dir) / REFERENCE_NAME
    if not path.exists():
        raise EngineError(
            f"{path} not found and no --bundle given; pass --bundle DIR (needs torch) or rebuild "
            "the engines with --target jetson on the workstation, which writes it"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            bundle_id = str(z["bundle_id"])
            raw = z["images_uint8"][:n_images]
            labels = z["labels"][:n_images]
            logits = z["logits"][:n_images]
            features = [z[f"features_{i}"][:n_images] for i in range(manifest.num_parts)]
    except (OSError, KeyError, ValueError) as exc:
        raise EngineError(f"{path} is unreadable or incomplete ({exc}); rebuild the engines") from exc
    if bundle_id != manifest.bundle_id:
        raise EngineError(
            f"{path} belongs to bundle {bundle_id!r}, the engines to {manifest.bundle_id!r}; rebuild the engines folder"
        )
    x = manifest.preprocessing.normalize(raw)
    return Reference(bundle_id, x, labels, features, logits, f"{path} (PyTorch outputs saved at build time)")
