"""Top-1 of every contender through its deployed engines (ONNX Runtime, 1 thread), on the same test images.

Fleets: every part's features once, then the fusion engine with all parts present and with each part
masked in turn (the board that is missing), exactly as the aggregator fuses after its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitfleet.bench.isolation import open_session


@dataclass(frozen=True)
class FleetAccuracy:
    top1: float
    without_part: list[float]  # top-1 with part i missing


def run_rows(path: Path, x: np.ndarray) -> np.ndarray:
    """One output row per image (the graphs have a static batch of 1, as a board runs them)."""
    session = open_session(path)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def classifier_top1(path: Path, x: np.ndarray, labels: np.ndarray) -> float:
    return float((run_rows(path, x).argmax(1) == labels).mean())


def fuse(fusion_path: Path, features: np.ndarray, mask_row: np.ndarray) -> np.ndarray:
    session = open_session(fusion_path)
    mask = mask_row[None].astype(np.float32)
    return np.concatenate(
        [session.run(None, {"features": features[i : i + 1], "mask": mask})[0] for i in range(len(features))]
    )


def fleet_top1(part_paths: list[Path], fusion_path: Path, x: np.ndarray, labels: np.ndarray) -> FleetAccuracy:
    # Features cross the wire as float16; the same rounding here.
    feats = [run_rows(p, x).astype(np.float16).astype(np.float32) for p in part_paths]
    dims = [f.shape[1] for f in feats]
    k = len(feats)
    full = np.concatenate(feats, 1)
    top1 = float((fuse(fusion_path, full, np.ones(k)).argmax(1) == labels).mean())
    without = []
    for i in range(k):
        # The aggregator zeroes a missing part's slice and clears its mask bit.
        masked = full.copy()
        start = sum(dims[:i])
        masked[:, start : start + dims[i]] = 0.0
        mask = np.ones(k)
        mask[i] = 0.0
        without.append(float((fuse(fusion_path, masked, mask).argmax(1) == labels).mean()))
    return FleetAccuracy(top1, without)
