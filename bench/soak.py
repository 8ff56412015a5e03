"""Soak test: a K-part fleet at the camera rate for --minutes; memory, drops and degraded answers over time.

    python bench/soak.py --minutes 30 [--engines DIR] [--fps 10] [--json] [--out soak.json]

Starts a private mosquitto, the aggregator and one agent per part as real `vitfleet` processes (one core, one
thread each, as in `vitfleet demo`), and an in-process camera node replaying Fashion-MNIST (looping) at --fps.
Every --sample seconds it records each process's RSS. Reported per process: RSS at start (after --warmup
seconds, once ONNX Runtime's arenas and the Python heaps have settled), at the end, and the change; plus frames
sent, answered, never answered, dropped by the agents (newer frame replaced an older one), late parts, and the
degraded fraction. The run passes when every process's RSS stays within --rss-tolerance (default ±10 %) of its
start figure; the exit code is 1 otherwise. Children are stopped on every exit path.

Without --engines, the demo's int8 engines under runs/demo are used (built on first use, like `vitfleet demo`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from vitfleet.agent.camera_node import CameraNode  # noqa: E402
from vitfleet.bench.script_report import emit_report  # noqa: E402
from vitfleet.camera.sources import open_source  # noqa: E402
from vitfleet.engines.build.demo_engines import prepare_demo_engines  # noqa: E402
from vitfleet.engines.runtime.manifest import read_manifest  # noqa: E402
from vitfleet.fleet.demo import replay_uri  # noqa: E402
from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions  # noqa: E402
from vitfleet.stats_message import AgentStats, AggregatorStats, first_of, of_role  # noqa: E402

log = logging.getLogger("vitfleet.soak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long the camera streams")
    p.add_argument("--fps", type=float, default=10.0, help="camera rate (frames per second)")
    p.add_argument("--engines", type=Path, default=None, help="engines folder (default: the demo's, built once)")
    p.add_argument("--work-dir", type=Path, default=Path("runs/soak"), help="logs, fleet.yaml, prediction log")
    p.add_argument("--deadline-ms", type=float, default=None, help="aggregator deadline (default: measured)")
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds before the start RSS is taken (default: 10 %% of the run, 20-120 s)",
    )
    p.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed relative RSS change, start to end")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    return p.parse_args(argv)


def rss_mb(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


class RssRecorder:
    """RSS of named processes every `interval` seconds, in a background thread."""

    def __init__(self, pids: dict[str, int], interval: float) -> None:
        self.pids, self.interval = pids, interval
        self.samples: list[tuple[float, dict[str, float | None]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss", daemon=True)

    def sample(self) -> None:
        self.samples.append((time.monotonic(), {name: rss_mb(pid) for name, pid in self.pids.items()}))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> RssRecorder:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def report(self, warm_from: float, tolerance: float) -> dict[str, dict[str, Any]]:
        out = {}
        for name in self.pids:
            series = [(t, s[name]) for t, s in self.samples if s.get(name) is not None]
            if not series:
                out[name] = {"error": "process vanished before the first sample"}
                continue
            warm = [v for t, v in series if t >= warm_from] or [series[-1][1]]
            start, end, peak = warm[0], series[-1][1], max(v for _, v in series)
            change = (end - start) / start
            out[name] = {
                "rss_first_mb": round(series[0][1], 1),
                "rss_start_mb": round(start, 1),
                "rss_end_mb": round(end, 1),
                "rss_peak_mb": round(peak, 1),
                "rss_change_pct": round(100 * change, 2),
                "within_tolerance": abs(change) <= tolerance,
            }
        return out


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work_dir.resolve()
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    engines = args.engines or prepare_demo_engines(Path("runs/demo"), None, None, quiet=True)[0]
    manifest = read_manifest(engines)
    camera_uri = replay_uri(manifest)  # the bundle's own test split
    seconds = args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else min(120.0, max(20.0, 0.1 * seconds))
    options = LocalFleetOptions(
        camera_uri=camera_uri, fps=args.fps, deadline_ms=args.deadline_ms, stats_interval=2.0, online_timeout=120.0
    )
    with LocalFleet(engines, run_dir, options) as fleet:
        assert fleet.broker is not None and fleet.config is not None and fleet.view is not None
        pids = {name: child.proc.pid for name, child in fleet.procs.children.items()}
        pids["camera+soak"] = os.getpid()
        node = CameraNode(
            fleet.broker,
            fleet.config.name,
            "camera",
            open_source(camera_uri, loop=True),
            fps=args.fps,
            duration=seconds,
            drain=3.0,
        )
        rss = RssRecorder(pids, args.sample)
        t0 = time.monotonic()
        rss.start()
        try:
            camera = node.run()
        finally:
            node.stop()
            rss.stop()
        fleet.procs.check_alive()
        time.sleep(2.5)  # one more stats round from every board
        stats = fleet.view.fleet_snapshot().reports.stats
        agents = fleet.agents
    memory = rss.report(t0 + warmup, args.rss_tolerance)
    answered = camera["predictions"]
    agent_stats = of_role(stats, AgentStats)
    agent_drops = {a: agent_stats[a].drops if a in agent_stats else None for a in agents}
    agg = first_of(stats, AggregatorStats)
    return {
        "minutes": args.minutes,
        "fps_target": args.fps,
        "parts": manifest.num_parts,
        "engines": str(engines),
        "warmup_s": warmup,
        "rss_tolerance_pct": 100 * args.rss_tolerance,
        "frames_sent": camera["frames_sent"],
        "predictions": answered,
        "frames_unanswered": camera["lost"],
        "frames_dropped_by_agents": agent_drops,
        "late_parts": agg.late if agg else None,
        "evicted": agg.evicted if agg else None,
        "degraded": camera["degraded"],
        "degraded_fraction": round(camera["degraded"] / answered, 5) if answered else None,
        "fps_achieved": round(camera["frames_sent"] / max(camera["elapsed_s"], 1e-9), 2),
        "e2e_p50_ms": camera.get("e2e_p50_ms"),
        "e2e_p99_ms": camera.get("e2e_p99_ms"),
        "accuracy": camera.get("accuracy"),
        "memory": memory,
        "rss_ok": all(m.get("within_tolerance", False) for m in memory.values()),
        # ok: nothing admitted was lost and memory stayed within the tolerance
        "ok": camera["lost"] == 0 and all(m.get("within_tolerance", False) for m in memory.values()),
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"soak: {report['minutes']} min, K = {report['parts']}, {report['fps_achieved']} fps "
        f"(target {report['fps_target']})"
    )
    print(
        f"  frames sent {report['frames_sent']}, answered {report['predictions']}, unanswered "
        f"{report['frames_unanswered']}, dropped by agents {report['frames_dropped_by_agents']}, late parts "
        f"{report['late_parts']}, degraded fraction {report['degraded_fraction']}"
    )
    print(f"  e2e p50 {report['e2e_p50_ms']} ms, p99 {report['e2e_p99_ms']} ms, accuracy {report['accuracy']}")
    for name, m in report["memory"].items():
        print(
            f"  {name:12s} RSS start {m.get('rss_start_mb')} MB -> end {m.get('rss_end_mb')} MB "
            f"({m.get('rss_change_pct')} %), peak {m.get('rss_peak_mb')} MB"
        )
    print(f"  RSS within ±{report['rss_tolerance_pct']:.0f} %: {'yes' if report['rss_ok'] else 'NO'}")
    print(f"  ok (nothing admitted lost, RSS within tolerance): {'yes' if report['ok'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return emit_report(run_soak(args), args.json, print_report, args.out)


if __name__ == "__main__":
    sys.exit(main())
