"""A camera faster than the fleet: the runs behind docs/benchmarks.md's "A camera faster than the fleet" table.

    python bench/overload.py [--engines DIR] [--out bench/results/overload.json] [--only NAME ...]
    python -m vitfleet.bench.runtime_report      # then: the docs' tables from the results files

Each scenario is one `vitfleet demo --headless --json` run as a subprocess (mosquitto, the aggregator, one agent
per part, the camera node), on the demo bundle's int8 engines unless --engines says otherwise (built on first use
like `vitfleet demo`). Written per run: the command, offered / admitted / skipped / lost / answered late, whole and
degraded answers, whether every board computed every admitted frame, goodput (whole answers per second), the
slowest board's own rate (frames per busy second) and their ratio, end-to-end p50/p99, and the load average
before and after; for the file: the machine (CPU model, vector extensions, cores, versions) and the date.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitfleet.bench.demo_runs import run_vitfleet_json, write_results  # noqa: E402

RESULTS = Path("bench/results/overload.json")
# The figures of `vitfleet demo --json` a run keeps.
KEPT = (
    "ok",
    "offered",
    "admitted",
    "skipped",
    "lost",
    "answered_late",
    "predictions",
    "whole",
    "degraded",
    "every_board_computed_every_admitted_frame",
    "whole_fps",
    "answered_fps",
    "slowest_board_fps",
    "goodput_of_slowest_board",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "max_in_flight",
    "camera_fps",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    args: tuple[str, ...]


# A 40x slower board running the demo bundle's sub-millisecond parts is slower than the fleet's round trip, as
# Pi-class boards are, so it, not the transport, bounds the fleet. Without a slow board the demo's parts are faster than the round trip: those rows show that bound.
SCENARIOS = (
    Scenario(
        "transport-bound",
        "demo bundle, both boards at this machine's speed, unpaced camera, 2 credits",
        ("--frames", "1000", "--fps", "0"),
    ),
    Scenario(
        "transport-bound-4-credits", "same, 4 credits", ("--frames", "1000", "--fps", "0", "--max-in-flight", "4")
    ),
    Scenario(
        "slow-board-unpaced",
        "demo bundle, agent1 emulating a board 40x slower, unpaced camera",
        ("--frames", "300", "--fps", "0", "--slow-agent", "40"),
    ),
    Scenario(
        "slow-board-paced",
        "same, camera at 60 fps (about twice the slow board's rate)",
        ("--frames", "300", "--fps", "60", "--slow-agent", "40"),
    ),
    # Three cameras offer 50 fps into a fleet of about 25: the 5 fps camera is due every frame, the other two
    # split the rest equally.
    Scenario(
        "three-cameras",
        "demo bundle, agent1 emulating a board 60x slower, three cameras at 30, 15 and 5 fps with equal weights",
        ("--duration", "20", "--cameras", "3", "--camera-fps", "30,15,5", "--slow-agent", "60"),
    ),
)
# What a run keeps of each camera's summary (several-camera runs).
CAMERA_KEPT = (
    "camera_fps",
    "weight",
    "offered",
    "admitted",
    "skipped",
    "lost",
    "predictions",
    "offered_fps",
    "admitted_fps",
    "share_fps",
    "of_share",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "accuracy",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", type=Path, default=None, help="engines folder (default: the demo's, built once)")
    p.add_argument("--work-dir", type=Path, default=Path("runs/demo"), help="the demo's work folder")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    p.add_argument("--only", nargs="*", choices=[s.name for s in SCENARIOS], help="run these scenarios only")
    return p.parse_args(argv)


def demo_command(scenario: Scenario, engines: Path | None, work_dir: Path) -> list[str]:
    """The command as a reader types it (the demo's own work folder and engines unless others were given)."""
    cmd = ["vitfleet", "demo", *scenario.args, "--headless", "--json", "--no-http"]
    if engines is not None:
        cmd += ["--engines", str(engines)]
    if work_dir != Path("runs/demo"):
        cmd += ["--work-dir", str(work_dir)]
    return cmd


def run_scenario(scenario: Scenario, engines: Path | None, work_dir: Path) -> dict[str, Any]:
    run = run_vitfleet_json(scenario.name, demo_command(scenario, engines, work_dir), timeout=900)
    result = run.pop("summary")
    return {
        "name": scenario.name,
        "what": scenario.what,
        **run,
        **{k: result.get(k) for k in KEPT},
        "boards": {
            b: {k: v.get(k) for k in ("frames", "own_fps", "slowdown", "infer_p50_ms", "drops")}
            for b, v in result.get("boards", {}).items()
        },
        "cameras": {c: {k: v.get(k) for k in CAMERA_KEPT} for c, v in result.get("cameras", {}).items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.engines is None:  # build (or find) the demo's engines once, before anything is timed
        from vitfleet.engines.build.demo_engines import prepare_demo_engines

        prepare_demo_engines(args.work_dir, None, None, quiet=True)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    runs = []
    for scenario in chosen:
        run = run_scenario(scenario, args.engines, args.work_dir)
        print(
            json.dumps(
                {
                    k: run[k]
                    for k in ("name", "ok", "lost", "whole_fps", "goodput_of_slowest_board", "e2e_p50_ms", "e2e_p99_ms")
                }
            ),
            flush=True,
        )
        runs.append(run)
    if args.only and args.out.exists():  # a partial re-run replaces its scenarios' rows and keeps the others
        kept = {r["name"]: r for r in json.loads(args.out.read_text())["runs"]}
        kept.update({r["name"]: r for r in runs})
        runs = [kept[s.name] for s in SCENARIOS if s.name in kept]
    write_results(
        args.out,
        "bench/overload.py",
        argv,
        {
            "engines": str(args.engines) if args.engines else f"the demo bundle's int8 engines ({args.work_dir})",
            "runs": runs,
        },
    )
    print(f"{len(runs)} runs -> {args.out}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
