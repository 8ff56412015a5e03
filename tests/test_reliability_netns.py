"""A slow, lossy link: one agent of a K = 2 fleet runs in its own network namespace, reaching
the broker over a veth pair whose egress is shaped by the kernel.

The issue asks for `tc netem` delay/loss. This kernel has no sch_netem ("Specified qdisc kind is unknown",
no modprobe, no /lib/modules) and no gact action, so netem and random loss cannot be used here; the test uses the
token-bucket filter (tbf) instead, a real kernel qdisc, on the lab's namespace and veth pair (lab/netns.py): a rate
far below what the agent sends makes every feature message wait in the queue (delay well past the deadline), and
the queue limit drops what does not fit (loss; TCP retransmits it later, later still). The test skips, naming the reason, where namespaces or tbf are
unavailable (not root, no `ip`/`tc`, a kernel without them).

What must hold: predictions keep coming at the deadline (degraded, the slow part missing), features that arrive
for an already-fused frame are dropped and counted as late, the aggregator's pending frames stay bounded, and
when the link is healthy again the answers are whole again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from test_reliability_fixtures import wait_until

from vitfleet.agent.prediction_log import read_predictions
from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet.processes import Child
from vitfleet.lab.errors import LabError
from vitfleet.lab.netns import BoardLink, require_netns_tools
from vitfleet.lab.quota_fleet import free_index_block

pytestmark = [pytest.mark.timeout(180, func_only=True), pytest.mark.slow]

DEADLINE_MS = 300.0
MAX_PENDING = 64


class SlowLink(BoardLink):
    """A lab board's namespace and veth pair (lab/netns.py) whose egress from the namespace can be shaped."""

    def shape(self, rate: str, limit_bytes: int) -> None:
        """Shape what leaves the namespace (the agent's features, stats, power)."""
        done = subprocess.run(
            self.exec_argv(
                [
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    self.board_if,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    "1600",
                    "limit",
                    str(limit_bytes),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tc tbf: {done.stderr.strip()}")

    def heal(self) -> None:
        subprocess.run(
            self.exec_argv(["tc", "qdisc", "del", "dev", self.board_if, "root"]), capture_output=True, timeout=10
        )


def _netns_or_skip(link: SlowLink) -> None:
    try:
        require_netns_tools()
        link.up()
        link.shape("1mbit", 100000)
    except (LabError, RuntimeError) as exc:
        link.down()
        pytest.skip(f"this machine cannot build the slow link: {exc}")
    link.heal()


def _spawn_in_ns(fleet: Fleet, link: SlowLink, name: str, fleet_file: Path, index: int) -> None:
    log_path = fleet.procs.log_dir / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            link.exec_argv(
                [
                    sys.executable,
                    "-m",
                    "vitfleet.cli",
                    "agent",
                    "--fleet",
                    str(fleet_file),
                    "--log-level",
                    "info",
                    "--stats-interval",
                    "0.5",
                    "--board",
                    name,
                    "--cpu",
                    str(index),
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    fleet.procs.children[name] = Child(name, proc, log_path)


def test_slow_lossy_link_keeps_the_deadline_and_counts_late_parts(fleet_engines, tmp_path):  # noqa: F811
    link = SlowLink(f"slow{os.getpid() % 100000}", free_index_block(1))
    _netns_or_skip(link)
    broker = LocalBroker(work_dir=tmp_path / "broker", host="0.0.0.0")
    fleet = None
    try:
        broker.start()
        fleet = Fleet(
            broker,
            fleet_engines,
            tmp_path,
            deadline_ms=DEADLINE_MS,
            tweak=lambda c: setattr(c.aggregator, "max_pending", MAX_PENDING),
        ).prepare()
        ns_config = fleet.config.model_copy(deep=True)
        ns_config.broker.host = link.host_addr
        ns_file = tmp_path / "fleet-ns.yaml"
        ns_file.write_text(yaml.safe_dump(ns_config.model_dump(mode="json")))

        fleet.spawn_aggregator()
        fleet.spawn_agent("agent0")
        _spawn_in_ns(fleet, link, "agent1", ns_file, 1)
        fleet.wait_online(fleet.agents + ["aggregator"], 60)

        node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=10, duration=60, drain=1.0)
        try:
            assert wait_until(lambda: node.counts["predictions"] >= 20, 20), node.counts
            # ~8 kbit/s out of the namespace: below what agent1 sends (features + stats + power) even when it is
            # starved, so its queue fills to the limit: every message waits seconds, the overflow is dropped and
            # resent.
            link.shape("8kbit", 6000)
            agg = fleet.procs.children["aggregator"].proc.pid
            rss_before = psutil.Process(agg).memory_info().rss
            assert wait_until(lambda: getattr(fleet.view.stats_of("aggregator"), "late", 0) >= 10, 40, step=0.25), (
                fleet.view.stats_of("aggregator")
            )
            late_at = time.time_ns()  # from here the queue is full: agent1's features come too late
            time.sleep(5.0)
            agg_stats = fleet.view.stats_of("aggregator")
            rss_after = psutil.Process(agg).memory_info().rss
            healed_at = time.time_ns()
            link.heal()
            # Once the backlog has drained the answers are whole again.
            assert wait_until(
                lambda: not (node.latest or {}).get("degraded", True) and node.latest["capture_ns"] > healed_at,
                40,
                step=0.25,
            ), node.latest
            whole_from = time.time_ns()
            time.sleep(3.0)
        finally:
            node.stop()
            thread.join(15)
        fleet.procs.check_alive()
        time.sleep(1.0)
        rows = read_predictions(fleet.log_path)
    finally:
        if fleet is not None:
            fleet.stop()
        broker.close()
        link.down()

    slow = [r for r in rows if late_at < r["capture_ns"] < healed_at]
    assert len(slow) >= 25
    # The deadline holds: what agent1 could not deliver in time is masked, and the answer is not held back.
    # (a frame in flight when the delay was switched on may still make it: one in twenty is allowed)
    assert np.mean([1 in r["missing_parts"] for r in slow]) >= 0.95, [r["missing_parts"] for r in slow]
    waits = np.array(
        [
            (r["fused_ns"] - r["capture_ns"]) / 1e6 - min(p["arrival_ms"] for p in r["parts"])
            for r in slow
            if r["degraded"]
        ]
    )
    assert np.median(waits) <= DEADLINE_MS + 100 and np.percentile(waits, 95) <= DEADLINE_MS + 400, np.percentile(
        waits, [50, 95]
    )
    gaps = np.diff(sorted(r["capture_ns"] for r in slow)) / 1e9
    assert gaps.max() < 1.0
    # Late features are dropped and counted, pending frames stay bounded, and memory does not run away.
    assert agg_stats is not None and agg_stats.late >= 10 and agg_stats.pending <= MAX_PENDING
    assert rss_after < rss_before * 1.2, (rss_before / 2**20, rss_after / 2**20)
    whole = [r for r in rows if r["capture_ns"] > whole_from]
    # Healed: agent1's part is back in (nearly) every answer; one in ten may still be flagged (a machine stall).
    assert len(whole) >= 10 and np.mean([1 not in r["missing_parts"] for r in whole]) >= 0.9, [
        r["missing_parts"] for r in whole
    ]
    assert np.mean([not r["degraded"] for r in whole]) >= 0.9
    print(
        f"slow link: {len(slow)} answers while shaped, {sum(r['degraded'] for r in slow)} degraded, "
        f"{agg_stats.late} late parts dropped, wait p50/p95 {np.percentile(waits, [50, 95]).round(1)} ms, "
        f"aggregator RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MB"
    )
