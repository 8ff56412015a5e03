"""One engine timed inside a lab board's CPU quota, without the fleet around it: what the quota alone does to it.

`time_under_quota(path, image, cores, s)` runs this module as a child inside its own cgroup capped at `cores`
(lab/cpu_quota.py), one ONNX Runtime thread, batch 1, in two ways: paced (each run after an idle gap, as a board
answering a camera slower than itself: CFS may hand the run a fresh quota at its start) and back to back (as a
saturated board). Compared with the full-core isolated median / q, this separates the quota's own effect from the
transport's in the measured fleets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _child(path: Path, image_npy: Path | None, runs: int, gap_s: float) -> dict[str, Any]:
    from vitfleet.bench.isolation import example_feeds, open_session

    session = open_session(path)
    feeds = example_feeds(session, np.load(image_npy) if image_npy else None)
    session.run(None, feeds)  # warm-up
    out = {}
    for mode, gap in (("paced", gap_s), ("back_to_back", 0.0)):
        times = []
        for _ in range(runs):
            time.sleep(gap)
            t0 = time.perf_counter()
            session.run(None, feeds)
            times.append((time.perf_counter() - t0) * 1e3)
        out[f"{mode}_median_ms"] = float(np.median(times))
        out[f"{mode}_p90_ms"] = float(np.percentile(times, 90))
    return out


def time_under_quota(
    path: Path,
    image: np.ndarray | None,
    cores: float,
    full_core_ms: float,
    period_us: int | None,
    runs: int,
    work: Path,
) -> dict[str, Any]:
    """The engine's batch-1 latency inside a fresh cgroup of `cores` (paced and back to back), unpinned like the lab fleet's agents."""
    from vitfleet.lab.cpu_quota import CpuQuota

    work.mkdir(parents=True, exist_ok=True)
    image_npy = None
    if image is not None:
        image_npy = work / "image.npy"
        np.save(image_npy, image)
    gap = 2.0 * full_core_ms / cores / 1e3
    argv = [
        sys.executable,
        "-m",
        "vitfleet.bench.seed_quota_timing",
        "--engine",
        str(path),
        "--runs",
        str(runs),
        "--gap-s",
        f"{gap:.4f}",
        *(["--image", str(image_npy)] if image_npy else []),
    ]
    with CpuQuota(f"timing-{path.stem}", cores, period_us) as quota:
        done = subprocess.run(
            quota.wrap_argv(argv),
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
        throttled = quota.throttling()
        period = quota.describe()["period_us"]
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        **figures,
        "cores": cores,
        "period_us": period,
        "runs": runs,
        "full_core_ms": full_core_ms,
        "full_core_over_q_ms": full_core_ms / cores,
        **throttled,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitfleet.bench.seed_quota_timing")
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--image", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--gap-s", type=float, default=0.1)
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.engine, args.image, args.runs, args.gap_s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
