"""A real fleet over real MQTT: private mosquitto, one agent process per part pinned to its own core with one
inference thread, the aggregator and the camera node as further processes, all on this machine.

Two phases on the same running fleet, both replaying the Fashion-MNIST test set:
  lockstep   one frame in flight: unloaded end-to-end latency, its breakdown, the MQTT hop, accuracy
  pipelined  up to `max_in_flight` frames in flight, as fast as the fleet answers: sustained frames/s
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

def _camera(procs, common: list[str], name: str, summary: Path, frames: int, max_in_flight: int,
            camera_uri: str, encoding: str = "raw", fps: float = 0.0) -> dict[str, Any]:
    args = ["camera", *common, "--board", "camera", "--summary", str(summary), "--uri", camera_uri, "--fps", str(fps),
            "--no-loop", "--frames", str(frames), "--max-in-flight", str(max_in_flight), "--drain", "5",
            "--encoding", encoding]
    child = procs.spawn(name, args)
    deadline = time.monotonic() + 60 + frames * 0.5
    while child.proc.poll() is None:
        procs.check_alive([n for n in procs.children if not n.startswith("camera")])
        if time.monotonic() > deadline:
            procs.stop(name)
            break
        time.sleep(0.1)
    if child.proc.returncode != 0 or not summary.exists():
        from vitfleet.agent.processes import ChildFailed

        raise ChildFailed(f"camera ({name}) exited with code {child.proc.returncode}: {child.tail()}")
    return json.loads(summary.read_text())


def _aggregator_stats(view, wait_s: float) -> dict[str, Any]:
    time.sleep(wait_s)  # the aggregator publishes its stats every stats interval
    stats = view.snapshot()["stats"]
    return next((s for s in stats.values() if s.get("role") == "aggregator"), {})


def peak_rss_mb(pid: int) -> float | None:
    """The high-water mark of a live process's resident memory (VmHWM), in MiB; None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_fleet(engines_dir: Path, work_dir: Path, lockstep_frames: int, pipelined_frames: int,
              max_in_flight: int, online_timeout: float = 90.0, camera_uri: str | None = None,
              encoding: str = "raw", lockstep_fps: float = 0.0) -> dict[str, Any]:
    """`camera_uri`/`encoding`: what the camera node replays (default: the bundle's own test split) and how
    frames travel (raw uint8 or JPEG). `lockstep_fps` > 0 paces the lockstep phase (0: each frame is read and
    stamped when the previous one's answer frees its admission credit)."""
    from vitfleet.agent.demo import demo_fleet, replay_uri
    from vitfleet.agent.fleet_view import FleetView
    from vitfleet.agent.local_broker import LocalBroker
    from vitfleet.agent.processes import ChildFailed, ProcessGroup
    from vitfleet.engines.manifest import read_manifest

    manifest = read_manifest(engines_dir)
    camera_uri = camera_uri or replay_uri(manifest)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob("*.json"):
        stale.unlink()
    with ExitStack() as stack:
        broker = LocalBroker(work_dir=work_dir / "broker")
        stack.callback(broker.close)
        broker_cfg = broker.start().config
        # No deadline cut: lockstep waits for every part, so no frame is fused with a part masked.
        fleet = demo_fleet(manifest.num_parts, broker_cfg, engines_dir, camera_uri, 0.0,
                           work_dir / "predictions.sqlite", 2000.0, max(1, max_in_flight))
        fleet_file = work_dir / "fleet.yaml"
        fleet_file.write_text(yaml.safe_dump(fleet.model_dump(mode="json"), sort_keys=False))
        procs = ProcessGroup(work_dir / "logs")
        stack.callback(procs.stop_all)
        view = FleetView(broker_cfg, fleet.name).start()
        stack.callback(view.stop)
        common = ["--fleet", str(fleet_file), "--log-level", "warning"]
        procs.spawn("aggregator", ["aggregator", *common, "--board", "aggregator", "--stats-interval", "0.5"])
        agents = [f"agent{i}" for i in range(manifest.num_parts)]
        for i, name in enumerate(agents):
            procs.spawn(name, ["agent", *common, "--board", name, "--cpu", str(i), "--threads", "1"])
        missing = view.wait_online(agents + ["aggregator"], online_timeout, alive=procs.check_alive)
        if missing:
            raise ChildFailed(f"{', '.join(missing)} did not come online within {online_timeout:.0f} s; "
                              f"see the logs in {procs.log_dir}")
        lock = _camera(procs, common, "camera-lockstep", work_dir / "lockstep.json", lockstep_frames, 1,
                       camera_uri, encoding, lockstep_fps)
        agg = _aggregator_stats(view, 1.2)
        piped = _camera(procs, common, "camera-pipelined", work_dir / "pipelined.json", pipelined_frames,
                        max_in_flight, camera_uri, encoding)
        agg_piped = _aggregator_stats(view, 1.2)
        peak_rss = {name: peak_rss_mb(procs.children[name].proc.pid) for name in agents + ["aggregator"]}
    fps = piped.get("answered_fps")  # first frame sent -> last answer: the drain wait for a lost frame is excluded
    return {
        "parts": manifest.num_parts, "precision": manifest.precision, "camera": camera_uri, "encoding": encoding,
        "lockstep_fps": lockstep_fps,
        "peak_rss_mb": peak_rss,
        "lockstep": {k: lock.get(k) for k in ("frames_sent", "predictions", "lost", "degraded", "accuracy",
                                              "e2e_p50_ms", "e2e_p99_ms", "breakdown_p50_ms", "elapsed_s")},
        "hop_p50_ms": agg.get("hop_p50_ms"), "hop_p99_ms": agg.get("hop_p99_ms"),
        "fusion_p50_ms": agg.get("fusion_p50_ms"),
        "pipelined": {k: piped.get(k) for k in ("frames_sent", "predictions", "lost", "degraded", "e2e_p50_ms",
                                                "e2e_p99_ms", "elapsed_s", "answered_fps")},
        "pipelined_hop_p50_ms": agg_piped.get("hop_p50_ms"), "pipelined_hop_p99_ms": agg_piped.get("hop_p99_ms"),
        "throughput_fps": fps, "max_in_flight": max_in_flight,
        "aggregator_mj_per_frame": agg_piped.get("mj_per_frame"),
        "aggregator_power_estimated": agg_piped.get("power_estimated"),
    }
