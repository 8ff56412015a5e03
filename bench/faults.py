"""Fault scenarios on a real local fleet: what a lost board costs, and how fast the fleet heals.

    python bench/faults.py --scenario board-loss [--engines DIR] [--victim agent1] [--heal-after 2] [--json]
                           [--out bench/results/healing-<fleet>.json]
    python -m vitfleet.bench.runtime_report      # then: docs/reliability.md's table from the results files

board-loss: a private mosquitto, the aggregator (with its coordinator and engine server) and one agent per
part as real `vitfleet` processes (booted with fleet/demo.py's helpers; each agent on its own engines folder
holding only its own part, as a deployed board, so a moved part is fetched and sha256-checked), and in-process
camera nodes replaying the bundle's own test split:

1. before: the first --images test images, as fast as the fleet answers (accuracy of the whole fleet);
2. fault: a paced camera (--fps) looping over the test split; after --warm seconds the victim agent is killed with
   SIGKILL; it runs until answers have been whole again for --hold seconds;
3. after: the same --images images as in 1, replayed again with the victim still dead (the healed fleet);
4. the victim is restarted and the time until the plan settles back is measured.

Reported: seconds from the kill to the first degraded answer and to whole answers again, accuracy before /
while degraded / after healing (and how many of the after answers equal the before answers, image by image),
frames admitted, lost and answered late in every phase, the plans, the machine (CPU model, vector extensions,
load average at the start and the end), the date and the command line. The after answers should equal the before
answers image by image: the moved part runs the same engine file (sha256-checked) on the same pixels, and ONNX
Runtime on one CPU computes the same features for them; an image whose answers differ is listed with both answers
and whether either was degraded. Without --engines the demo's engines (runs/demo, built on first use like
`vitfleet demo`) are used.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitfleet.agent.camera_node import CameraNode  # noqa: E402
from vitfleet.agent.engine_fetch import copy_part_engines  # noqa: E402
from vitfleet.agent.prediction_log import read_plans, read_predictions  # noqa: E402
from vitfleet.bench.machine import machine_facts  # noqa: E402
from vitfleet.bench.script_report import emit_report  # noqa: E402
from vitfleet.camera.sources import open_source  # noqa: E402
from vitfleet.engines.build.demo_engines import prepare_demo_engines  # noqa: E402
from vitfleet.engines.runtime.manifest import read_manifest  # noqa: E402
from vitfleet.errors import UserError  # noqa: E402
from vitfleet.fleet.demo import replay_uri  # noqa: E402
from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions  # noqa: E402
from vitfleet.fleet.processes import ProcessGroup  # noqa: E402

log = logging.getLogger("vitfleet.faults")
SCENARIOS = ("board-loss",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=SCENARIOS, default="board-loss")
    p.add_argument("--engines", type=Path, default=None, help="engines folder (default: the demo's, built once)")
    p.add_argument("--work-dir", type=Path, default=Path("runs/faults"), help="logs, fleet.yaml, prediction log")
    p.add_argument("--victim", default=None, help="the agent to kill (default: the last one)")
    p.add_argument("--heal-after", type=float, default=2.0, help="aggregator.heal_after_s (seconds)")
    p.add_argument("--deadline-ms", type=float, default=1000.0, help="aggregator deadline")
    p.add_argument("--fps", type=float, default=10.0, help="camera rate during the fault")
    p.add_argument("--images", type=int, default=500, help="test images replayed before and after")
    p.add_argument("--warm", type=float, default=3.0, help="seconds of streaming before the kill")
    p.add_argument("--hold", type=float, default=4.0, help="seconds of whole answers before the fault phase ends")
    p.add_argument("--timeout", type=float, default=60.0, help="give up waiting for healing after this long")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the report (JSON) here, e.g. bench/results/healing-demo-k2.json",
    )
    return p.parse_args(argv)


def _accuracy(rows: list[dict[str, Any]]) -> float | None:
    labelled = [r for r in rows if r["label"] is not None]
    return None if not labelled else round(sum(r["class_id"] == r["label"] for r in labelled) / len(labelled), 5)


class Phase:
    """One camera node run; the prediction-log rows of its frames are picked by frame id afterwards."""

    def __init__(self, broker: Any, fleet: str, uri: str, fps: float, **kwargs: Any) -> None:
        self.node = CameraNode(broker, fleet, "camera", open_source(uri, loop=fps > 0), fps=fps, **kwargs)
        self.first_id = time.time_ns() // 1000  # the node numbers its frames from its start time in µs
        self.summary: dict[str, Any] = {}
        self._thread = threading.Thread(target=lambda: self.summary.update(self.node.run()), daemon=True)

    def start(self) -> Phase:
        self._thread.start()
        return self

    def finish(self, stop: bool = False, timeout: float = 600.0) -> dict[str, Any]:
        if stop:
            self.node.stop()
        self._thread.join(timeout)
        return self.summary

    def rows(self, all_rows: list[dict[str, Any]], until_id: int | None = None) -> list[dict[str, Any]]:
        return sorted(
            (r for r in all_rows if r["frame_id"] >= self.first_id and (until_id is None or r["frame_id"] < until_id)),
            key=lambda r: r["frame_id"],
        )


def board_loss(args: argparse.Namespace) -> dict[str, Any]:
    engines = args.engines or prepare_demo_engines(Path("runs/demo"), None, None, quiet=True)[0]
    manifest = read_manifest(engines)
    k = manifest.num_parts
    if k < 2:
        raise UserError(
            f"{engines} holds a single part: there is no survivor to heal onto; use engines with K >= 2 parts"
        )
    victim = args.victim or f"agent{k - 1}"
    if victim not in {f"agent{i}" for i in range(k)}:
        raise UserError(f"--victim {victim} is not an agent of this fleet; use one of agent0..agent{k - 1}")
    uri = replay_uri(manifest)
    run_dir = args.work_dir.resolve() / "run"
    machine = machine_facts()  # before the fleet starts: the load average the run started from
    with tempfile.TemporaryDirectory(prefix="vitfleet-boards-") as boards_tmp:
        # each agent on its own engines folder holding its part only: a survivor must fetch what it takes over
        own = {f"agent{i}": copy_part_engines(engines, Path(boards_tmp) / f"agent{i}", [i]) for i in range(k)}
        options = LocalFleetOptions(
            camera_uri=uri,
            fps=args.fps,
            deadline_ms=args.deadline_ms,
            heal_after_s=args.heal_after,
            log_level="info",
            stats_interval=0.5,
            online_timeout=180.0,
            agent_engines=own,
        )
        with LocalFleet(engines, run_dir, options) as fleet:
            assert fleet.broker is not None and fleet.config is not None
            broker, name, log_path = fleet.broker, fleet.config.name, fleet.log_path
            before = Phase(broker, name, f"{uri}&limit={args.images}", 0, drain=5.0).start()
            before_summary = before.finish()
            fault = Phase(broker, name, uri, args.fps, drain=5.0).start()  # loops over the test split
            time.sleep(args.warm)
            killed_ns = fleet.kill(victim)
            healed_ns = _wait_whole(log_path, killed_ns, args.hold, args.timeout, fleet.procs)
            fault_summary = fault.finish(stop=True)
            after = Phase(broker, name, f"{uri}&limit={args.images}", 0, drain=5.0).start()
            after_summary = after.finish()
            plans_healed = read_plans(log_path)
            restarted_ns = time.time_ns()
            fleet.spawn_agent(victim)
            settled_ns = _wait_plan(log_path, restarted_ns, {f"agent{i}": [i] for i in range(k)}, args.timeout)
            time.sleep(1.0)  # the log commits every 0.5 s
            rows = read_predictions(log_path)
            plans = read_plans(log_path)
    report = _report(
        args,
        engines,
        k,
        victim,
        rows,
        plans,
        plans_healed,
        (before, before_summary),
        (fault, fault_summary),
        (after, after_summary),
        killed_ns,
        healed_ns,
        restarted_ns,
        settled_ns,
    )
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "bench/faults.py", *args.argv]),
        "machine": machine,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        **report,
    }


def _wait_whole(log_path: Path, killed_ns: int, hold: float, timeout: float, procs: ProcessGroup) -> int | None:
    """When answers were whole again (first whole answer for a frame captured after the kill), after they
    stayed whole for `hold` seconds; None when that did not happen within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive(["aggregator"])
        rows = [r for r in read_predictions(log_path) if r["capture_ns"] > killed_ns]
        whole = [r for r in rows if not r["degraded"]]
        if whole:
            first = min(r["capture_ns"] for r in whole)
            if (time.time_ns() - first) / 1e9 >= hold:
                return first
        time.sleep(0.25)
    return None


def _wait_plan(log_path: Path, since_ns: int, wanted: dict[str, list[int]], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plans = [p for p in read_plans(log_path) if p["created_ns"] > since_ns]
        if plans and plans[-1]["assignments"] == wanted:
            return int(plans[-1]["created_ns"])
        time.sleep(0.25)
    return None


def _report(
    args: argparse.Namespace,
    engines: Path,
    k: int,
    victim: str,
    rows: list[dict[str, Any]],
    plans: list[dict[str, Any]],
    plans_healed: list[dict[str, Any]],
    before: tuple[Phase, dict[str, Any]],
    fault: tuple[Phase, dict[str, Any]],
    after: tuple[Phase, dict[str, Any]],
    killed_ns: int,
    healed_ns: int | None,
    restarted_ns: int,
    settled_ns: int | None,
) -> dict[str, Any]:
    b_rows = before[0].rows(rows, fault[0].first_id)
    f_rows = fault[0].rows(rows, after[0].first_id)
    a_rows = after[0].rows(rows)
    a_rows = [r for r in a_rows if r["capture_ns"] < restarted_ns]
    after_kill = sorted((r for r in f_rows if r["fused_ns"] > killed_ns), key=lambda r: r["fused_ns"])
    first_degraded = next((r for r in after_kill if r["degraded"]), None)
    first_whole = min(
        (r["fused_ns"] for r in f_rows if r["capture_ns"] > killed_ns and not r["degraded"]), default=None
    )
    degraded = [r for r in f_rows if r["degraded"] and r["capture_ns"] > killed_ns]
    heal_plan = next((p for p in plans_healed if p["reason"].startswith("heal")), None)
    same = sum(x["class_id"] == y["class_id"] for x, y in zip(b_rows, a_rows))
    differing = [
        {
            "image": i,
            "before": x["class_id"],
            "after": y["class_id"],
            "before_degraded": x["degraded"],
            "after_degraded": y["degraded"],
        }
        for i, (x, y) in enumerate(zip(b_rows, a_rows))
        if x["class_id"] != y["class_id"]
    ]
    acc_before, acc_after = _accuracy(b_rows), _accuracy(a_rows)
    summaries = {"before": before[1], "fault": fault[1], "after": after[1]}
    lost = sum(s.get("lost", 0) for s in summaries.values())
    kill_to_whole = None if first_whole is None else round((first_whole - killed_ns) / 1e9, 3)
    diff = None if acc_before is None or acc_after is None else round(100 * (acc_after - acc_before), 3)
    return {
        "scenario": "board-loss",
        "engines": str(engines),
        "parts": k,
        "victim": victim,
        "heal_after_s": args.heal_after,
        "deadline_ms": args.deadline_ms,
        "fps": args.fps,
        "images": args.images,
        "kill_to_first_degraded_s": None
        if first_degraded is None
        else round((first_degraded["fused_ns"] - killed_ns) / 1e9, 3),
        "kill_to_whole_s": kill_to_whole,
        "healed_within_5_s": kill_to_whole is not None and kill_to_whole <= 5.0,
        "moved_to": None
        if heal_plan is None
        else {b: parts for b, parts in heal_plan["assignments"].items() if len(parts) > 1},
        "restart_to_settled_s": None if settled_ns is None else round((settled_ns - restarted_ns) / 1e9, 3),
        "accuracy_before": acc_before,
        "accuracy_degraded": _accuracy(degraded),
        "degraded_answers": len(degraded),
        "accuracy_after_healing": acc_after,
        "after_minus_before_pt": diff,
        "after_answers_equal_before": f"{same}/{min(len(b_rows), len(a_rows))}",
        "after_equal_before": same,
        "compared": min(len(b_rows), len(a_rows)),
        "differing_images": differing,
        "before_answers_whole": sum(not r["degraded"] for r in b_rows),
        "answers_before": len(b_rows),
        "answers_after_healing_whole": sum(not r["degraded"] for r in a_rows),
        "answers_after_healing": len(a_rows),
        "admitted": {n: s.get("admitted") for n, s in summaries.items()},
        "answered": {n: s.get("predictions") for n, s in summaries.items()},
        "lost": {n: s.get("lost") for n, s in summaries.items()},
        "answered_late": {n: s.get("answered_late") for n, s in summaries.items()},
        "frames_lost": lost,
        "plans": [{"reason": p["reason"], "assignments": p["assignments"], "unplaced": p["unplaced"]} for p in plans],
        # ok: nothing lost, healed, and the healed fleet answers every replayed image as before the loss
        "ok": (
            lost == 0
            and kill_to_whole is not None
            and diff is not None
            and abs(diff) <= 0.2
            and not differing
            and len(a_rows) == len(b_rows) == args.images
        ),
    }


def print_report(r: dict[str, Any]) -> None:
    print(
        f"board loss: K = {r['parts']}, killed {r['victim']} (kill -9), heal_after_s {r['heal_after_s']}, "
        f"CPU {r['machine']['cpu']} ({r['machine']['isa']}), load average {r['machine']['load_avg_at_start']}"
    )
    print(
        f"  kill -> first degraded answer {r['kill_to_first_degraded_s']} s; kill -> whole answers again "
        f"{r['kill_to_whole_s']} s (part moved: {r['moved_to']}); restart -> plan settled "
        f"{r['restart_to_settled_s']} s"
    )
    print(
        f"  accuracy before {r['accuracy_before']}, while degraded {r['accuracy_degraded']} "
        f"({r['degraded_answers']} answers), after healing {r['accuracy_after_healing']} "
        f"({r['after_minus_before_pt']} pt; {r['after_answers_equal_before']} answers identical)"
    )
    print(
        f"  admitted {r['admitted']}, answered {r['answered']}, frames lost {r['frames_lost']}, answered late "
        f"{r['answered_late']}"
    )
    for d in r["differing_images"]:
        print(
            f"  image {d['image']}: class {d['before']} before, {d['after']} after (degraded: "
            f"{d['before_degraded']} / {d['after_degraded']})"
        )
    for p in r["plans"]:
        print(f"  plan: {p['assignments']} unplaced {p['unplaced']} ({p['reason']})")
    print(f"  ok: {'yes' if r['ok'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = board_loss(args)
    except UserError as exc:  # one sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return emit_report(report, args.json, print_report, args.out)


if __name__ == "__main__":
    sys.exit(main())
