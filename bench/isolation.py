"""One board in isolation: this process pinned to one core, one ONNX Runtime thread, one frame at a time.

Latency: median and p99 over `runs` timed calls after a warm-up. Energy: the same model looped for a fixed
time inside a PowerSampler window, joules / frames. On a machine without a real meter the sampler's meter
is the psutil estimate (whole-machine CPU use times a per-core power profile) and is labelled estimated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class IsolatedFigures:
    median_ms: float
    p99_ms: float
    runs: int
    joules_per_frame: float | None
    energy_frames: int


@contextmanager
def pinned(core: int) -> Iterator[int]:
    """Pin this process (and the ORT thread it runs inference on) to one core, then restore."""
    before = os.sched_getaffinity(0)
    cores = sorted(before)
    chosen = cores[core] if -len(cores) <= core < len(cores) else cores[-1]
    os.sched_setaffinity(0, {chosen})
    try:
        yield chosen
    finally:
        os.sched_setaffinity(0, before)


def open_session(path: Path):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def example_feeds(session, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Batch-1 inputs: a real normalised image for image inputs, ones for the fusion mask."""
    feeds = {}
    rng = np.random.default_rng(0)
    for node in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in node.shape]
        shape[0] = 1
        if node.name == "mask":
            feeds[node.name] = np.ones(shape, np.float32)
        elif image is not None and list(image.shape) == shape:
            feeds[node.name] = np.ascontiguousarray(image, np.float32)
        else:
            feeds[node.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def measure(
    path: Path, runs: int, warmup: int, energy_seconds: float, sampler=None, image: np.ndarray | None = None
) -> IsolatedFigures:
    session = open_session(path)
    feeds = example_feeds(session, image)
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(runs)
    for k in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times[k] = time.perf_counter() - t0
    joules, frames = None, 0
    if sampler is not None and energy_seconds > 0:
        t0 = sampler.now()
        end = t0 + energy_seconds
        while sampler.now() < end:
            session.run(None, feeds)
            frames += 1
        t1 = sampler.now()
        from vitfleet.power.sampler import PowerWindowError

        try:
            joules = sampler.energy_between(t0, t1, timeout_s=2.0) / max(frames, 1)
        except PowerWindowError:  # a starved sampler thread: report no figure rather than a wrong one
            joules = None
    return IsolatedFigures(float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3), runs, joules, frames)
