"""The same engines, run offline in batches on a data set: the reference for the fleet's live accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitfleet.agent.engine_loading import load_fusion, load_part


def offline_predictions(engines_dir: Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 NHWC images at the model's size -> predicted class ids, all parts present."""
    fusion, manifest = load_fusion(engines_dir)
    parts = [load_part(engines_dir, p)[0] for p in range(manifest.num_parts)]
    pre = manifest.preprocessing
    out = []
    for start in range(0, len(images), batch):
        x = pre.normalize(images[start : start + batch])
        feats = np.concatenate([np.asarray(p.infer(x), np.float32) for p in parts], axis=1)
        mask = np.ones((len(x), manifest.num_parts), np.float32)
        out.append(np.argmax(np.asarray(fusion.fuse(feats, mask)), axis=1))
    return np.concatenate(out)


def offline_accuracy(engines_dir: Path, dataset: str, split: str, limit: int | None = None) -> float:
    from vitfleet.datasets import load_dataset
    from vitfleet.engines.runtime.manifest import read_manifest

    # Converted exactly as the camera replay's frames are prepared by the agents (size, channels).
    data = load_dataset(dataset, split, pre=read_manifest(engines_dir).preprocessing).head(limit)
    return float((offline_predictions(engines_dir, data.images) == data.labels).mean())
