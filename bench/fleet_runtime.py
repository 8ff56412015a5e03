"""The fleet-runtime figures behind docs/benchmarks.md's "Fleet runtime" section: the MQTT hop alone, and live
accuracy and latency of whole fleets replaying the test set.

    python bench/fleet_runtime.py [--fleet NAME=ENGINES[,BUNDLE] ...] [--no-demo] [--out bench/results/fleet-runtime.json]
    python -m vitfleet.bench.runtime_report      # then: the docs' table from the results file

- hop: a private mosquitto (the fleet's settings) and `agent.hop_probe.measure_hop`: 192 float16 features at
  500 msg/s, 1,000 messages, three runs (the figure is the best run, the others are kept);
- fleets: `vitfleet demo --accuracy --json --no-http` per fleet (every test image in lockstep, the same engines
  checked offline beside it), as a subprocess: the demo bundle's K = 2 engines (built on first use) unless
  --no-demo, then each --fleet.

Written: the date, the command, the machine (CPU model, vector extensions, cores, load average at the start) and
each measurement with the command that makes it and the load average before and after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from vitfleet.bench.demo_runs import load_avg, run_vitfleet_json, write_results  # noqa: E402
from vitfleet.bench.machine import machine_facts  # noqa: E402

RESULTS = Path("bench/results/fleet-runtime.json")
KEPT = (
    "ok",
    "accuracy",
    "offline_accuracy",
    "offline_source",
    "accuracy_diff_pt",
    "accuracy_matches",
    "admitted",
    "predictions",
    "degraded",
    "lost",
    "answered_late",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "hop_p50_ms",
    "hop_p99_ms",
    "elapsed_s",
    "breakdown_p50_ms",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--fleet",
        action="append",
        default=[],
        metavar="NAME=ENGINES[,BUNDLE]",
        help="a fleet to replay the test set on, after the demo bundle's",
    )
    p.add_argument("--no-demo", action="store_true", help="skip the demo bundle's fleet")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    return p.parse_args(argv)


def hop_figures(runs: int = 3, count: int = 1000) -> dict[str, Any]:
    from vitfleet.fleet.hop_probe import measure_hop
    from vitfleet.fleet.local_broker import LocalBroker

    before = load_avg()
    with tempfile.TemporaryDirectory(prefix="vitfleet-hop-") as tmp:
        broker = LocalBroker(work_dir=Path(tmp)).start()
        try:
            hops = [measure_hop(broker.config, count=count) for _ in range(runs)]
        finally:
            broker.stop()
    each = [
        {
            "received": int(len(h)),
            "p50_ms": round(float(np.percentile(h, 50)), 4),
            "p99_ms": round(float(np.percentile(h, 99)), 4),
        }
        for h in hops
    ]
    best = min(each, key=lambda r: r["p50_ms"])
    return {
        "what": f"MQTT hop agent publish -> aggregator receive (192 float16 features, 500 msg/s, {count:,} "
        f"messages, best of {runs})",
        "command": "agent.hop_probe.measure_hop, as `pytest -s tests/test_fleet_mqtt.py -k hop` runs it",
        "runs": each,
        "p50_ms": best["p50_ms"],
        "p99_ms": best["p99_ms"],
        "load_avg_before": before,
        "load_avg_after": load_avg(),
    }


def fleet_figures(name: str, engines: Path | None, bundle: Path | None) -> dict[str, Any]:
    cmd = ["vitfleet", "demo", "--accuracy", "--headless", "--json", "--no-http"]
    if engines is not None:
        cmd += ["--engines", str(engines)]
    if bundle is not None:
        cmd += ["--bundle", str(bundle)]
    run = run_vitfleet_json(name, cmd)
    result = run.pop("summary")
    return {"name": name, **run, "agents": len(result.get("boards", {})), **{k: result.get(k) for k in KEPT}}


def _fleet_arg(text: str) -> tuple[str, Path | None, Path | None]:
    name, _, paths = text.partition("=")
    engines, _, bundle = paths.partition(",")
    if not name or not engines:
        raise SystemExit(f"--fleet {text!r}: write NAME=ENGINES or NAME=ENGINES,BUNDLE")
    return name, Path(engines), Path(bundle) if bundle else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fleets = ([] if args.no_demo else [("demo-k2", None, None)]) + [_fleet_arg(f) for f in args.fleet]
    if any(e is None for _, e, _ in fleets):  # build (or find) the demo's engines before anything is timed
        from vitfleet.engines.build.demo_engines import prepare_demo_engines

        prepare_demo_engines(Path("runs/demo"), None, None, quiet=True)
    machine = machine_facts()
    hop = hop_figures()
    print(json.dumps({"hop_p50_ms": hop["p50_ms"], "hop_p99_ms": hop["p99_ms"]}), flush=True)
    runs = []
    for name, engines, bundle in fleets:
        run = fleet_figures(name, engines, bundle)
        print(
            json.dumps(
                {k: run[k] for k in ("name", "ok", "accuracy", "offline_accuracy", "lost", "e2e_p50_ms", "e2e_p99_ms")}
            ),
            flush=True,
        )
        runs.append(run)
    write_results(args.out, "bench/fleet_runtime.py", argv, {"hop": hop, "fleets": runs}, machine)
    print(f"hop + {len(runs)} fleets -> {args.out}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
