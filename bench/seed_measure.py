"""Seed-scale measurements on this machine: one engine at a time (pinned core, one ONNX Runtime thread,
batch 1, time-boxed runs), the JPEG codec on a 224² frame, and the wire bytes of frames and features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.bench.isolation import example_feeds, open_session, pinned
from vitfleet.bench.seed_settings import SeedSettings


def time_engine(path: Path, image: np.ndarray | None, s: SeedSettings) -> dict[str, Any]:
    """Median / p90 of as many batch-1 runs as fit `latency_seconds` (bounded by the min and max run counts)."""
    with pinned(s.core):
        session = open_session(path)
        feeds = example_feeds(session, image)
        t0 = time.perf_counter()
        for _ in range(s.latency_warmup):
            session.run(None, feeds)
        per_run = (time.perf_counter() - t0) / max(1, s.latency_warmup)
        runs = int(min(s.latency_max_runs, max(s.latency_min_runs, s.latency_seconds / max(per_run, 1e-6))))
        times = np.empty(runs)
        for k in range(runs):
            t = time.perf_counter()
            session.run(None, feeds)
            times[k] = time.perf_counter() - t
    return {
        "median_ms": float(np.median(times) * 1e3),
        "p90_ms": float(np.percentile(times, 90) * 1e3),
        "runs": runs,
        "bytes": path.stat().st_size,
        "file": str(path),
    }


def jpeg_codec(frames_bgr: np.ndarray, s: SeedSettings, repeats: int = 5) -> dict[str, Any]:
    """cv2 JPEG encode/decode of the frames the camera replays (pinned, one thread), and the frame message bytes
    the real encoder puts on the wire (72-byte header + JPEG)."""
    import cv2

    from vitfleet.agent.protocol import FrameMessage, encode_frame

    params = [cv2.IMWRITE_JPEG_QUALITY, int(s.jpeg_quality)]
    enc, dec = [], []
    cv2.setNumThreads(1)
    with pinned(s.core):
        for _ in range(repeats):
            for img in frames_bgr:
                t0 = time.perf_counter()
                ok, buf = cv2.imencode(".jpg", img, params)
                t1 = time.perf_counter()
                cv2.imdecode(buf, cv2.IMREAD_COLOR)
                t2 = time.perf_counter()
                enc.append(t1 - t0)
                dec.append(t2 - t1)
    messages = [
        len(encode_frame(FrameMessage(i, 0, img, 0, 0), "jpeg", s.jpeg_quality)) for i, img in enumerate(frames_bgr)
    ]
    raw = len(encode_frame(FrameMessage(0, 0, frames_bgr[0], 0, 0), "raw"))
    return {
        "encode_p50_ms": float(np.median(enc) * 1e3),
        "decode_p50_ms": float(np.median(dec) * 1e3),
        "frames": len(frames_bgr),
        "quality": s.jpeg_quality,
        "shape": list(frames_bgr[0].shape),
        "frame_message_bytes_mean": float(np.mean(messages)),
        "frame_message_bytes_max": int(max(messages)),
        "raw_frame_message_bytes": raw,
    }


def replay_frames(data: Path, s: SeedSettings) -> np.ndarray:
    """The test split as the camera's dataset:// source hands it out (uint8 BGR, image_size²)."""
    from vitfleet.datasets import load_dataset

    test = load_dataset(f"folder:{data}", "test", size=s.image_size, channels=3)
    return np.ascontiguousarray(test.images[..., ::-1])


def camera_uri(data: Path, s: SeedSettings) -> str:
    return f"dataset://folder:{data.resolve()}/test?size={s.image_size}&channels=3"
