"""A real fleet over real MQTT: private mosquitto, one agent process per part pinned to its own core with one
inference thread, the aggregator and the camera node as further processes, all on this machine.

Two phases on the same running fleet, both replaying the Fashion-MNIST test set:
  lockstep   one frame in flight: unloaded end-to-end latency, its breakdown, the MQTT hop, accuracy
  pipelined  up to `max_in_flight` frames in flight, as fast as the fleet answers: sustained frames/s
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions
from vitfleet.stats_message import AgentStats, AggregatorStats

# Builds the fleet a run measures: the one-machine LocalFleet, or a lab fleet (lab/quota_fleet.py: each agent in
# its own cgroup quota and network namespace) -- same phases, same figures.
FleetFactory = Callable[[Path, Path, LocalFleetOptions], LocalFleet]


def _camera(
    fleet: LocalFleet,
    name: str,
    summary: Path,
    frames: int,
    max_in_flight: int,
    camera_uri: str,
    encoding: str = "raw",
    fps: float = 0.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    args = [
        "--uri",
        camera_uri,
        "--fps",
        str(fps),
        "--no-loop",
        "--frames",
        str(frames),
        "--max-in-flight",
        str(max_in_flight),
        "--drain",
        "5",
        "--encoding",
        encoding,
    ]
    return fleet.run_camera_process(summary, args, name, timeout=timeout or 60 + frames * 0.5)


def _aggregator_stats(fleet: LocalFleet, wait_s: float) -> dict[str, Any]:
    time.sleep(wait_s)  # the aggregator publishes its stats every stats interval
    agg = fleet.view.stats_of("aggregator") if fleet.view else None
    return agg.model_dump() if isinstance(agg, AggregatorStats) else {}


def peak_rss_mb(pid: int) -> float | None:
    """The high-water mark of a live process's resident memory (VmHWM), in MiB; None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _agents(fleet: LocalFleet) -> dict[str, dict[str, Any]]:
    """Each agent's own figures from its last stats: frames, inference p50, frames per busy second."""
    out = {}
    for name in fleet.agents:
        st = fleet.view.stats_of(name) if fleet.view else None
        if isinstance(st, AgentStats):
            out[name] = {"frames": st.frames, "infer_p50_ms": st.infer_p50_ms, "own_fps": st.own_fps}
    return out


def run_fleet(
    engines_dir: Path,
    work_dir: Path,
    lockstep_frames: int,
    pipelined_frames: int,
    max_in_flight: int,
    online_timeout: float = 90.0,
    camera_uri: str | None = None,
    encoding: str = "raw",
    lockstep_fps: float = 0.0,
    fleet_factory: FleetFactory = LocalFleet,
    camera_timeout_s: float | None = None,
) -> dict[str, Any]:
    """`camera_uri`/`encoding`: what the camera node replays (default: the bundle's own test split) and how
    frames travel (raw uint8 or JPEG). `lockstep_fps` > 0 paces the lockstep phase (0: each frame is read and
    stamped when the previous one's answer frees its admission credit). `fleet_factory`: which fleet (a lab
    fleet's quotas and links are reported under `lab`). `camera_timeout_s`: per camera phase (default from the
    frame counts, for boards that answer within half a second)."""
    from vitfleet.engines.runtime.manifest import read_manifest
    from vitfleet.fleet.demo import replay_uri

    manifest = read_manifest(engines_dir)
    camera_uri = camera_uri or replay_uri(manifest)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob("*.json"):
        stale.unlink()
    # No deadline cut: lockstep waits for every part, so no frame is fused with a part masked.
    options = LocalFleetOptions(
        camera_uri=camera_uri,
        fps=0.0,
        deadline_ms=2000.0,
        max_in_flight=max(1, max_in_flight),
        stats_interval=0.5,
        online_timeout=online_timeout,
    )
    fleet = fleet_factory(engines_dir, work_dir, options)
    with fleet:
        lock = _camera(
            fleet,
            "camera-lockstep",
            work_dir / "lockstep.json",
            lockstep_frames,
            1,
            camera_uri,
            encoding,
            lockstep_fps,
            camera_timeout_s,
        )
        agg = _aggregator_stats(fleet, 1.2)
        piped = _camera(
            fleet,
            "camera-pipelined",
            work_dir / "pipelined.json",
            pipelined_frames,
            max_in_flight,
            camera_uri,
            encoding,
            timeout=camera_timeout_s,
        )
        agg_piped = _aggregator_stats(fleet, 1.2)
        peak_rss = {name: peak_rss_mb(fleet.procs.children[name].proc.pid) for name in fleet.agents + ["aggregator"]}
        agents = _agents(fleet)
    lab = getattr(fleet, "lab_report", None)
    fps = piped.get("answered_fps")  # first frame sent -> last answer: the drain wait for a lost frame is excluded
    return {
        "parts": manifest.num_parts,
        "precision": manifest.precision,
        "camera": camera_uri,
        "encoding": encoding,
        "lockstep_fps": lockstep_fps,
        "peak_rss_mb": peak_rss,
        "agents": agents,
        "lockstep": {
            k: lock.get(k)
            for k in (
                "frames_sent",
                "predictions",
                "lost",
                "degraded",
                "accuracy",
                "e2e_p50_ms",
                "e2e_p99_ms",
                "breakdown_p50_ms",
                "elapsed_s",
            )
        },
        "hop_p50_ms": agg.get("hop_p50_ms"),
        "hop_p99_ms": agg.get("hop_p99_ms"),
        "fusion_p50_ms": agg.get("fusion_p50_ms"),
        "pipelined": {
            k: piped.get(k)
            for k in (
                "frames_sent",
                "predictions",
                "lost",
                "degraded",
                "e2e_p50_ms",
                "e2e_p99_ms",
                "elapsed_s",
                "answered_fps",
            )
        },
        "pipelined_hop_p50_ms": agg_piped.get("hop_p50_ms"),
        "pipelined_hop_p99_ms": agg_piped.get("hop_p99_ms"),
        "throughput_fps": fps,
        "max_in_flight": max_in_flight,
        "aggregator_mj_per_frame": agg_piped.get("mj_per_frame"),
        "aggregator_power_estimated": agg_piped.get("power_estimated"),
        **({"lab": lab()} if lab is not None else {}),
    }
