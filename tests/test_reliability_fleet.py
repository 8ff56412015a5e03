"""Faults of a running fleet: real mosquitto, real int8 ONNX Runtime engines, the
aggregator and the agents as real `vitfleet` processes, killed with SIGKILL.

- board loss: kill -9 one agent of a K = 4 fleet mid-stream -> predictions keep coming within the deadline,
  flagged degraded with the missing part; the restarted agent rejoins and answers are whole again; the accuracy
  while degraded is measured (and printed, for docs/reliability.md);
- broker restart: every client reconnects by itself, predictions resume within 5 s, nothing crashes; the
  availability topics tell the truth before, after, and for a board killed after the restart (its will is
  re-registered on the new connection);
- aggregator kill -9: the prediction/power log opens cleanly afterwards, every row committed before the kill is
  there, no partial row, and a restarted aggregator appends to the same log.

tests/test_fleet_e2e.py already covers a K = 2 agent kill and a basic broker restart; these go further.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import numpy as np
import pytest
from fleet_harness import fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from test_reliability_fixtures import (
    AvailabilityLog,
    k4_engines,  # noqa: F401 - a fixture
    running_fleet,
    spawn_agent,  # noqa: F401
    wait_until,
)

from vitfleet.agent.prediction_log import PredictionLog, read_predictions

pytestmark = [pytest.mark.timeout(180, func_only=True), pytest.mark.slow]

DEADLINE_MS = 300.0
FPS = 10
# K = 4 on 2 shared cores: 5 fps and a 1 s deadline keep four agents ahead of the camera even when other jobs load
# the machine, so a part missing from an answer means the board is gone, not that it was starved.
K4_FPS = 5
K4_DEADLINE_MS = 1000.0


def _accuracy(rows: list[dict]) -> float | None:
    labelled = [r for r in rows if r["label"] is not None]
    return None if not labelled else float(np.mean([r["class_id"] == r["label"] for r in labelled]))


def test_k4_board_loss_degrades_then_rejoins(broker, k4_engines, tmp_path):  # noqa: F811
    with running_fleet(broker, k4_engines, tmp_path, K4_DEADLINE_MS) as fleet:
        assert len(fleet.agents) == 4
        node, thread = fleet.run_camera_in_background(
            "dataset://fashion-mnist/test", fps=K4_FPS, duration=150, drain=1.0
        )
        try:
            assert wait_until(lambda: node.counts["predictions"] >= 30, 40), node.counts
            victim = fleet.procs.children["agent2"].proc
            killed_at = time.time_ns()
            victim.send_signal(signal.SIGKILL)
            victim.wait(5)
            fleet.procs.children.pop("agent2")  # killed on purpose: not part of the clean-shutdown check
            assert wait_until(lambda: fleet.view.available.get("agent2") == "offline", 10)
            # Stay degraded long enough for a meaningful accuracy figure.
            assert wait_until(
                lambda: sum(r["capture_ns"] > killed_at for r in read_predictions(fleet.log_path)) >= 40, 40, step=0.5
            )
            restarted_at = time.time_ns()
            spawn_agent(fleet, "agent2")
            assert wait_until(
                lambda: fleet.view.available.get("agent2") == "online",
                60,
            ), f"agent2 did not rejoin; log: {fleet.procs.children['agent2'].tail()}"
            online_at = time.time_ns()
            time.sleep(4.0)
        finally:
            node.stop()
            thread.join(15)
        time.sleep(1.0)  # the log commits every 0.5 s
        fleet.procs.check_alive()
        rows = sorted(read_predictions(fleet.log_path), key=lambda r: r["capture_ns"])

    before = [r for r in rows if r["capture_ns"] < killed_at - 2 * K4_DEADLINE_MS * 1e6]
    degraded = [r for r in rows if killed_at + 100e6 < r["capture_ns"] < restarted_at]
    whole_again = [r for r in rows if r["capture_ns"] > online_at + 1e9]

    def with_part2(rs: list[dict]) -> float:
        return float(np.mean([2 not in r["missing_parts"] for r in rs]))

    # Before the kill and after the rejoin, agent2's part is in the answers (while it is gone: in none). At 5 fps
    # with a 1 s deadline an agent misses only when the machine stalls for a second; one such answer in twenty
    # is allowed (it is flagged), more means the fleet did not really have the board back.
    assert len(before) >= 20 and with_part2(before) >= 0.95, [r["missing_parts"] for r in before]
    assert len(whole_again) >= 10 and with_part2(whole_again) >= 0.95, [r["missing_parts"] for r in whole_again]
    assert np.mean([not r["degraded"] for r in before + whole_again]) >= 0.95
    # While agent2 is gone: every answer is flagged degraded and names part 2 as missing; none is held back.
    assert len(degraded) >= 35
    assert all(r["degraded"] and 2 in r["missing_parts"] for r in degraded), [
        r["missing_parts"] for r in degraded if 2 not in r["missing_parts"]
    ][:5]
    assert all(2 not in [p["part"] for p in r["parts"]] for r in degraded)
    # Fused at the deadline counted from the first part's arrival (plus scheduling slack on this shared 2-core
    # machine): the missing part does not hold the answer back.
    waits = np.array(
        [(r["fused_ns"] - r["capture_ns"]) / 1e6 - min(p["arrival_ms"] for p in r["parts"]) for r in degraded]
    )
    assert np.median(waits) <= K4_DEADLINE_MS + 150 and np.percentile(waits, 95) <= K4_DEADLINE_MS + 500, np.percentile(
        waits, [50, 95, 100]
    )
    # No gap in the stream: answers kept coming at the camera rate.
    gaps = np.diff([r["capture_ns"] for r in degraded]) / 1e9
    assert gaps.max() < 2.0, gaps.max()
    # Accuracy with exactly part 2 missing vs whole answers. Part 2 holds classes 2 and 6 of 10: without it those
    # are (mostly) lost, the rest must still be recognised.
    only2 = [r for r in degraded if r["missing_parts"] == [2]]
    whole = [r for r in before + whole_again if not r["degraded"]]
    acc_whole, acc_degraded = _accuracy(whole), _accuracy(only2)
    assert acc_degraded is not None and acc_whole is not None and len(only2) >= 20
    assert acc_degraded >= 0.5 * acc_whole and acc_degraded > 0.3, (acc_degraded, acc_whole)
    figures = {
        "k": 4,
        "killed": "agent2",
        "fps": K4_FPS,
        "deadline_ms": K4_DEADLINE_MS,
        "whole_frames": len(whole),
        "accuracy_whole": round(acc_whole, 4),
        "degraded_frames": len(degraded),
        "frames_only_part2_missing": len(only2),
        "accuracy_degraded": round(acc_degraded, 4),
        "degraded_wait_ms_p50_p95": [round(float(x), 1) for x in np.percentile(waits, [50, 95])],
    }
    print("board loss figures:", json.dumps(figures))


def test_broker_restart_everyone_reconnects_and_availability_tells_the_truth(broker, fleet_engines, tmp_path):  # noqa: F811
    with (
        running_fleet(broker, fleet_engines, tmp_path, DEADLINE_MS) as fleet,
        AvailabilityLog(broker.config, fleet.config.name) as avail,
    ):
        boards = [*fleet.agents, "aggregator"]
        assert wait_until(lambda: all(avail.latest(b) == "online" for b in boards), 5), avail.events
        node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=FPS, duration=60, drain=1.0)

        try:
            assert wait_until(lambda: node.counts["predictions"] >= 10, 15), node.counts
            broker.stop()
            time.sleep(1.5)  # every client notices and retries with backoff meanwhile
            broker.start()
            back_at = time.time()
            # The retained store was empty after the restart (persistence off): every "online" seen now was
            # re-published by a client that reconnected by itself.
            assert wait_until(lambda: all(avail.latest(b, since=back_at) == "online" for b in boards), 5), [
                e for e in avail.events if e[0] >= back_at
            ]
            count_at_back = node.counts["predictions"]
            assert wait_until(lambda: node.counts["predictions"] > count_at_back, 5), (
                "predictions did not resume within 5 s of the broker coming back"
            )
            resumed_s = time.time() - back_at
            fleet.procs.check_alive()
            # The last will was registered again on the new connection: a board killed now is reported offline.
            victim = fleet.procs.children.pop("agent1").proc
            killed_at = time.time()  # stamped first: the broker publishes the will within milliseconds
            victim.send_signal(signal.SIGKILL)
            victim.wait(5)
            assert wait_until(lambda: avail.latest("agent1", since=killed_at) == "offline", 5)
            assert all(avail.latest(b) == "online" for b in ("agent0", "aggregator"))
            time.sleep(1.5)  # keep the camera running past killed_at + 0.5 s so there are frames to judge below
        finally:
            node.stop()
            thread.join(15)
        assert node.link.connects >= 2
        # And the remaining boards still answer (degraded, part 1 missing).
        fleet.procs.check_alive()
        time.sleep(1.0)
        rows = read_predictions(fleet.log_path)
        late = [r for r in rows if r["capture_ns"] > (killed_at + 0.5) * 1e9]
        assert late and all(r["missing_parts"] == [1] for r in late)
    print(f"broker restart: predictions resumed {resumed_s:.2f} s after the broker came back")


def test_aggregator_kill_leaves_a_clean_log_with_every_committed_row(broker, fleet_engines, tmp_path):  # noqa: F811
    with running_fleet(broker, fleet_engines, tmp_path, DEADLINE_MS) as fleet:
        node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=20, duration=60, drain=0.5)
        committed_predictions: set[int] = set()
        committed_power = 0
        try:
            assert wait_until(lambda: node.counts["predictions"] >= 40, 20), node.counts
            # Read what is committed, from another connection, while the aggregator keeps writing; kill it right
            # after a read so the last rows seen are as fresh as possible.
            reader = sqlite3.connect(f"file:{fleet.log_path}?mode=ro", uri=True)
            try:
                for _ in range(6):
                    committed_predictions |= {fid for (fid,) in reader.execute("SELECT frame_id FROM predictions")}
                    committed_power = reader.execute("SELECT count(*) FROM power").fetchone()[0]
                    time.sleep(0.25)
                victim = fleet.procs.children["aggregator"].proc
                committed_predictions |= {fid for (fid,) in reader.execute("SELECT frame_id FROM predictions")}
                committed_power = reader.execute("SELECT count(*) FROM power").fetchone()[0]
                victim.send_signal(signal.SIGKILL)
                victim.wait(5)
            finally:
                reader.close()
            fleet.procs.children.pop("aggregator")
            assert len(committed_predictions) >= 30

            # The log opens cleanly and holds every committed row, whole.
            conn = sqlite3.connect(fleet.log_path)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                on_disk = {fid for (fid,) in conn.execute("SELECT frame_id FROM predictions")}
                power_rows = conn.execute("SELECT count(*) FROM power").fetchone()[0]
                nulls = conn.execute(
                    "SELECT count(*) FROM predictions WHERE frame_id IS NULL OR class_name IS NULL "
                    "OR parts IS NULL OR missing_parts IS NULL OR fusion_ms IS NULL"
                ).fetchone()[0]
            finally:
                conn.close()
            assert committed_predictions <= on_disk, sorted(committed_predictions - on_disk)[:5]
            assert power_rows >= committed_power
            assert nulls == 0
            for r in read_predictions(fleet.log_path):  # every row parses, and its parts agree with its flags
                assert sorted([p["part"] for p in r["parts"]] + r["missing_parts"]) == [0, 1]
                assert r["degraded"] == bool(r["missing_parts"])
            assert PredictionLog(fleet.log_path).close() is None  # the aggregator's own opener accepts it

            # A restarted aggregator appends to the same log.
            fleet.procs.spawn(
                "aggregator",
                [
                    "aggregator",
                    "--fleet",
                    str(fleet.fleet_file),
                    "--log-level",
                    "info",
                    "--stats-interval",
                    "0.5",
                    "--board",
                    "aggregator",
                ],
            )
            restarted = time.time_ns()
            assert wait_until(
                lambda: any(r["fused_ns"] > restarted for r in read_predictions(fleet.log_path)), 40, step=0.5
            ), fleet.procs.children["aggregator"].tail()
        finally:
            node.stop()
            thread.join(15)
        rows = read_predictions(fleet.log_path)
        assert committed_predictions <= {r["frame_id"] for r in rows}
    print(
        f"aggregator kill: {len(committed_predictions)} predictions and {committed_power} power rows committed "
        f"before the kill, all present afterwards"
    )
