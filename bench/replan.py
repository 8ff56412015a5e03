"""A board slowed mid-run is re-planned: goodput before, while slow, after the re-plan, and whether the plan stood.

    python bench/replan.py --engines runs/demo/engines/36f7f2d6c516 --json --out bench/results/replan.json
    python -m vitfleet.bench.runtime_report      # then: docs/reliability.md's table from the results file

A lab fleet (lab/quota_fleet.py: every agent its own network namespace and CPU-quota cgroup; needs root): one
agent per part plus one spare agent board with no part, the aggregator with its coordinator (self-healing and
re-planning for speed on, `replan_hold_s` = --hold) and an in-process camera node offering frames as fast as the
fleet admits them (credit admission). Every agent runs under --cores of a core. After --warm seconds (the
coordinator has trusted every board's measured speed) the victim's quota is divided by --slowdown, as a board
that throttles; the run goes on for --after seconds.

"What the remaining speed allows" is the goodput before the slowdown: the spare has the quota the victim had, so
the best layout after the slowdown (the victim's part on the spare) is as fast as the first one. Reported:
goodput (whole answers per second) before, in the second around the end of the re-plan's hold (still slow), and
from slowdown + 10 s to the camera's end (with its lowest 2-s window); seconds from the slowdown until goodput
recovered to >= 80 % of the allowed figure (the start of the first 2-s window from which every 2-s window of the
next 5 s reached it); the plans after the slowdown and how many plan changes followed the re-plan (0: it stood); the
camera's offered/admitted/lost; the machine. ok: recovered within 10 s, nothing lost, the plan stood.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitfleet.agent.camera_node import CameraNode  # noqa: E402
from vitfleet.agent.prediction_log import read_plans, read_predictions  # noqa: E402
from vitfleet.bench.machine import machine_facts  # noqa: E402
from vitfleet.bench.replan_figures import (
    NS,
    goodput,
    goodput_series,
    lowest_window,
    plan_story,  # noqa: E402
    recovered_after_s,
)
from vitfleet.bench.script_report import emit_report  # noqa: E402
from vitfleet.camera.sources import open_source  # noqa: E402
from vitfleet.engines.runtime.manifest import read_manifest  # noqa: E402
from vitfleet.errors import UserError  # noqa: E402
from vitfleet.fleet.demo import replay_uri  # noqa: E402
from vitfleet.fleet.local_fleet import LocalFleetOptions  # noqa: E402
from vitfleet.fleet_config import BoardConfig, FleetConfig  # noqa: E402
from vitfleet.lab.quota_fleet import LabOptions, QuotaFleet, lab_unavailable  # noqa: E402

RECOVER_WITHIN_S = 10.0
RECOVER_SHARE = 0.8
SPARE = "spare"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", type=Path, required=True, help="engines folder (K >= 1 parts)")
    p.add_argument("--work-dir", type=Path, default=Path("runs/replan"), help="logs, fleet.yaml, prediction log")
    p.add_argument("--cores", type=float, default=0.15, help="every agent's CPU quota, in cores")
    p.add_argument("--slowdown", type=float, default=3.0, help="the victim's quota is divided by this mid-run")
    p.add_argument("--victim", default=None, help="the agent slowed (default: the last part's)")
    p.add_argument("--hold", type=float, default=2.0, help="aggregator.replan_hold_s (seconds)")
    p.add_argument("--warm", type=float, default=8.0, help="seconds of streaming before the slowdown")
    p.add_argument("--after", type=float, default=20.0, help="seconds of streaming after the slowdown")
    p.add_argument("--max-in-flight", type=int, default=3, help="admission credits")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--out", type=Path, default=None, help="also write the report (JSON) here, e.g. bench/results/replan.json"
    )
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


def _with_spare(fleet: FleetConfig) -> None:
    fleet.boards.insert(len(fleet.boards_with("agent")), BoardConfig(name=SPARE, roles=["agent"]))


def slow_board_run(
    engines: Path,
    work_dir: Path,
    cores: float = 0.15,
    slowdown: float = 3.0,
    victim: str | None = None,
    hold_s: float = 2.0,
    warm_s: float = 8.0,
    after_s: float = 20.0,
    max_in_flight: int = 3,
) -> dict[str, Any]:
    """Run the scenario (module docstring) once; the figures and the verdict."""
    why_not = lab_unavailable()
    if why_not is not None:
        raise UserError(f"the slow-board run needs the lab (root, cgroups, network namespaces): {why_not}")
    manifest = read_manifest(engines)
    k = manifest.num_parts
    victim = victim or f"agent{k - 1}"
    uri = replay_uri(manifest)
    options = LocalFleetOptions(
        camera_uri=uri,
        fps=0,
        deadline_ms=1000.0,
        max_in_flight=max_in_flight,
        heal_after_s=2.0,
        replan_hold_s=hold_s,
        log_level="info",
        stats_interval=0.5,
        online_timeout=120.0,
        tweak=_with_spare,
    )
    # Processes start unquotaed (a quota of a fraction of a core makes imports take many seconds) and get their
    # quota once online.
    fleet = QuotaFleet(engines, work_dir.resolve() / "run", options, LabOptions(cores=1.0))
    if victim not in fleet.agents:
        raise UserError(f"--victim {victim} is not an agent of this fleet; use one of {', '.join(fleet.agents)}")
    fleet.agents.append(SPARE)
    with fleet:
        assert fleet.broker is not None and fleet.config is not None
        for name in fleet.agents:
            fleet.set_cores(name, cores)
        node = CameraNode(
            fleet.broker,
            fleet.config.name,
            "camera",
            open_source(uri, loop=True),
            fps=0,
            duration=warm_s + after_s,
            max_in_flight=max_in_flight,
            drain=3.0,
        )
        summary: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: summary.update(node.run()), daemon=True)
        started_ns = time.time_ns()
        thread.start()
        time.sleep(warm_s)
        slowed_ns = time.time_ns()
        fleet.set_cores(victim, cores / slowdown)
        thread.join(after_s + 60)
        ended_ns = time.time_ns()
        time.sleep(1.0)  # the log commits every 0.5 s
        rows, plans = read_predictions(fleet.log_path), read_plans(fleet.log_path)
        agg = fleet.view.stats_of("aggregator") if fleet.view else None
    return _report(
        rows,
        plans,
        summary,
        started_ns,
        slowed_ns,
        ended_ns,
        dict(
            parts=k,
            victim=victim,
            cores=cores,
            slowdown=slowdown,
            hold_s=hold_s,
            warm_s=warm_s,
            after_s=after_s,
            max_in_flight=max_in_flight,
            engines=str(engines),
            board_speeds=getattr(agg, "board_speeds", None),
            speed_replans=getattr(agg, "speed_replans", None),
        ),
    )


def _report(
    rows: list[dict[str, Any]],
    plans: list[dict[str, Any]],
    summary: dict[str, Any],
    started_ns: int,
    slowed_ns: int,
    ended_ns: int,
    setup: dict[str, Any],
) -> dict[str, Any]:
    last_fused = max((r["fused_ns"] for r in rows), default=ended_ns)
    # up to the camera's planned end: after it, the last answers trickle in and say nothing about the fleet's pace
    end_ns = min(ended_ns, last_fused, started_ns + int((setup["warm_s"] + setup["after_s"]) * NS))
    allowed = goodput(rows, slowed_ns - 4 * NS, slowed_ns)  # the steady rate before the slowdown
    story = plan_story(plans, slowed_ns)
    hold = setup["hold_s"]
    slow_rate = goodput(rows, slowed_ns + int((hold - 0.5) * NS), slowed_ns + int((hold + 0.5) * NS))
    after = goodput(rows, slowed_ns + int(RECOVER_WITHIN_S * NS), end_ns)
    recovered = recovered_after_s(rows, slowed_ns, end_ns, RECOVER_SHARE * allowed)
    lost = summary.get("lost")
    ok = (
        recovered is not None
        and recovered <= RECOVER_WITHIN_S
        and after >= RECOVER_SHARE * allowed
        and lost == 0
        and story["plan_changes_after_replan"] == 0
        and story["final_assignments"] is not None
    )
    return {
        **setup,
        "goodput_before": round(allowed, 1),
        "goodput_while_slow": round(slow_rate, 1),
        "goodput_from_10_s": round(after, 1),
        "goodput_from_10_s_of_allowed": round(after / allowed, 3) if allowed else None,
        "recovered_after_s": recovered,
        "lowest_2_s_goodput_from_10_s": round(lowest_window(rows, slowed_ns + int(RECOVER_WITHIN_S * NS), end_ns), 1),
        **story,
        "goodput_series": goodput_series(rows, started_ns, end_ns),
        "series_starts_s_before_slowdown": round((slowed_ns - started_ns) / NS, 2),
        "offered": summary.get("offered"),
        "admitted": summary.get("admitted"),
        "skipped": summary.get("skipped"),
        "lost": lost,
        "answered_late": summary.get("answered_late"),
        "degraded": summary.get("degraded"),
        "ok": ok,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_facts()
    report = slow_board_run(
        args.engines,
        args.work_dir,
        args.cores,
        args.slowdown,
        args.victim,
        args.hold,
        args.warm,
        args.after,
        args.max_in_flight,
    )
    report = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "bench/replan.py", *args.argv]),
        "machine": machine,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        **report,
    }
    return emit_report(report, args.json, _print, args.out)


def _print(r: dict[str, Any]) -> None:
    print(
        f"slow board: {r['victim']} slowed {r['slowdown']:g}x at {r['series_starts_s_before_slowdown']} s; "
        f"goodput {r['goodput_before']} -> {r['goodput_while_slow']} (slow) -> {r['goodput_from_10_s']} answers/s "
        f"from +10 s; recovered to 80 % after {r['recovered_after_s']} s; re-planned after "
        f"{r['replanned_after_s']} s to {r['final_assignments']}; plan changes after: "
        f"{r['plan_changes_after_replan']}; lost {r['lost']} of {r['admitted']}; ok: {r['ok']}"
    )


if __name__ == "__main__":
    sys.exit(main())
