"""Per-file latency: batch 1, a fixed thread count, median of many timed runs after a warm-up.

Inputs are drawn once from a normal distribution with the graph's input shape: latency of these dense
graphs does not depend on pixel values, and no data set is needed on the machine being measured.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.engines.runtime.backends import load_model
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import PRECISIONS, read_manifest


def _example(spec, rng: np.random.Generator) -> np.ndarray:
    shape = [1 if not isinstance(d, int) else d for d in spec.shape]
    shape[0] = 1
    if spec.name == "mask":
        return np.ones(shape, np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def measure_latency(
    engines_dir: Path, threads: int = 1, runs: int = 200, warmup: int = 20, backend: str = "onnxruntime"
) -> list[dict[str, Any]]:
    if runs < 1:
        raise EngineError(f"--runs must be at least 1, got {runs}")
    engines_dir = Path(engines_dir)
    manifest = read_manifest(engines_dir)
    rng = np.random.default_rng(0)
    rows = []
    order = {"part": 0, "fusion": 1, "teacher": 2}
    entries = sorted(
        (e for e in manifest.entries if e.backend == backend),
        key=lambda e: (order[e.role], e.part or 0, PRECISIONS.index(e.precision)),
    )
    for entry in entries:
        model = load_model(engines_dir, entry, threads)
        feeds = {spec.name: _example(spec, rng) for spec in entry.inputs}
        for _ in range(warmup):
            model.run(feeds)
        times = np.empty(runs)
        for k in range(runs):
            t0 = time.perf_counter()
            model.run(feeds)
            times[k] = time.perf_counter() - t0
        rows.append(
            {
                "role": entry.role,
                "part": entry.part,
                "precision": entry.precision,
                "backend": backend,
                "file": entry.file,
                "bytes": entry.size,
                "threads": threads,
                "runs": runs,
                "median_ms": float(np.median(times) * 1e3),
                "p90_ms": float(np.percentile(times, 90) * 1e3),
            }
        )
    return rows
