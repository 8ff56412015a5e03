"""Several cameras on one fleet: each gets its weighted share of what the fleet computes, none loses a frame.

The rule (agent/camera_shares.py) is tested on its own with a fake clock-free driver, then through a real
`vitfleet demo` subprocess tree (mosquitto, ONNX Runtime agents, aggregator, camera node) with three cameras at
30, 15 and 5 fps into a fleet slower than their sum.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401

from vitfleet.agent.admission import CreditGate
from vitfleet.agent.camera_shares import CameraShares, fair_shares
from vitfleet.agent.prediction_log import PredictionLog, read_predictions
from vitfleet.fleet_config import FleetConfigError, parse_fleet


def test_fair_shares_fill_small_demands_first_and_split_the_rest_by_weight():
    assert fair_shares(20.0, [30.0, 15.0, 5.0], [1, 1, 1]) == pytest.approx([7.5, 7.5, 5.0])
    assert fair_shares(20.0, [30.0, 30.0], [3, 1]) == pytest.approx([15.0, 5.0])
    assert fair_shares(100.0, [30.0, 15.0, 5.0], [1, 1, 1]) == pytest.approx([30.0, 15.0, 5.0])  # no contention
    assert fair_shares(9.0, [0.0, 30.0], [1, 1]) == pytest.approx([0.0, 9.0])  # an idle camera


def _drive(weights: list[float], every: list[int], ticks: int) -> list[int]:
    """Camera i offers a frame every `every[i]` ticks; one credit, answered every tick: who gets admitted."""
    gate: CreditGate[int] = CreditGate(credits=1, timeout=60)
    shares: CameraShares[int, int] = CameraShares(gate, weights, lambda item: item)
    stop = threading.Event()
    got = [0] * len(weights)
    for t in range(ticks):
        for lane, period in enumerate(every):
            if t % period == 0:
                shares.offer(lane, t, stop, wait=False)
        admitted = shares.next_admitted(stop, timeout=0.01)
        if admitted is not None:
            frame_id, lane, _ = admitted
            got[lane] += 1
            gate.answer(frame_id)
    return got


def test_a_slow_camera_gets_every_frame_and_fast_ones_split_the_rest():
    # Offered per tick: 1, 1/2, 1/6 (30 / 15 / 5 fps against a fleet of one frame per tick).
    got = _drive([1, 1, 1], [1, 2, 6], 600)
    assert got[2] == 100  # the 5 fps camera: every frame
    assert abs(got[0] - got[1]) <= 2 and got[0] + got[1] + got[2] == 600


def test_weights_split_the_fleet_between_cameras_that_both_offer_more():
    got = _drive([3, 1], [1, 1], 400)
    assert got == [300, 100]


def test_an_idle_camera_banks_no_credits():
    """A camera that offered nothing for a while re-enters at the current virtual time: it does not take the
    fleet for itself to catch up."""
    gate: CreditGate[int] = CreditGate(credits=1, timeout=60)
    shares: CameraShares[int, int] = CameraShares(gate, [1, 1], lambda item: item)
    stop = threading.Event()
    for t in range(100):  # camera 0 alone for 100 frames
        shares.offer(0, t, stop, wait=False)
        frame_id, _, _ = shares.next_admitted(stop, timeout=0.01)
        gate.answer(frame_id)
    lanes = []
    for t in range(20):  # then both, always offering
        shares.offer(0, t, stop, wait=False)
        shares.offer(1, t, stop, wait=False)
        frame_id, lane, _ = shares.next_admitted(stop, timeout=0.01)
        gate.answer(frame_id)
        lanes.append(lane)
    assert lanes.count(1) == 10 and lanes.count(0) == 10


def test_a_replaced_waiting_frame_is_skipped_and_counted_once():
    gate: CreditGate[int] = CreditGate(credits=1, timeout=60)
    shares: CameraShares[int, int] = CameraShares(gate, [1], lambda item: item)
    stop = threading.Event()
    shares.offer(0, 1, stop, wait=False)
    first = shares.next_admitted(stop, timeout=0.01)
    assert first is not None and first[2] == 1
    shares.offer(0, 2, stop, wait=False)  # waits: the one credit is out
    shares.offer(0, 3, stop, wait=False)  # newer: frame 2 is skipped
    assert shares.next_admitted(stop, timeout=0.05) is None
    gate.answer(first[0])
    second = shares.next_admitted(stop, timeout=0.01)
    assert second is not None and second[2] == 3
    c = gate.lane_counts(0)
    assert (c.offered, c.admitted, c.skipped) == (3, 2, 1)


def test_camera_names_must_be_unique_and_topic_safe():
    base = {"boards": [{"name": "a"}]}
    with pytest.raises(FleetConfigError, match="camera name 'door' appears more than once"):
        parse_fleet({**base, "cameras": [{"name": "door", "uri": "synthetic://"}, {"name": "door", "uri": "x"}]})
    with pytest.raises(FleetConfigError, match="cameras.0.name"):
        parse_fleet({**base, "cameras": [{"name": "front/door", "uri": "synthetic://"}]})
    fleet = parse_fleet(
        {
            **base,
            "camera": {"fps": 12},
            "cameras": [{"name": "yard", "uri": "synthetic://"}, {"name": "gate", "uri": "x", "fps": 5}],
        }
    )
    assert [(c.name, c.fps) for c in fleet.camera_feeds()] == [("yard", 12.0), ("gate", 5.0)]
    assert parse_fleet(base).camera_names() == ["cam0"]


def _demo(args: list[str], timeout: float = 200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", "demo", "--headless", "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(240, func_only=True)
def test_three_cameras_into_a_slower_fleet_each_get_their_share_and_lose_nothing(tiny_engines: Path, tmp_path: Path):  # noqa: F811
    """30 + 15 + 5 fps into a fleet of about 20 (one agent emulating a board 120x slower): the 5 fps camera is
    due all its frames, the other two split the rest; every camera gets at least 90 % of its weighted share."""
    run = _demo(
        [
            "--duration",
            "12",
            "--cameras",
            "3",
            "--camera-fps",
            "30,15,5",
            "--slow-agent",
            "120",
            "--engines",
            str(tiny_engines),
            "--work-dir",
            str(tmp_path / "demo"),
            "--no-http",
        ]
    )
    assert run.stdout.strip(), run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["ok"] and run.returncode == 0, result
    cams = result["cameras"]
    assert list(cams) == ["cam0", "cam1", "cam2"] and [c["index"] for c in cams.values()] == [0, 1, 2]
    offered = sum(c["offered_fps"] for c in cams.values())
    admitted = sum(c["admitted_fps"] for c in cams.values())
    assert admitted < 0.8 * offered, "the fleet must be slower than the cameras' sum for shares to matter"
    for name, cam in cams.items():
        assert cam["lost"] == 0 and cam["admitted"] == cam["predictions"], (name, cam)
        assert cam["offered"] == cam["admitted"] + cam["skipped"], (name, cam)
        assert cam["of_share"] >= 0.9, (name, cam)
        assert cam["e2e_p50_ms"] is not None and cam["accuracy"] is not None
    assert cams["cam2"]["skipped"] <= 1  # below its share: every frame computed (one may meet a busy fleet)
    assert sum(c["admitted"] for c in cams.values()) == result["admitted"]
    assert result["every_board_computed_every_admitted_frame"], result["boards"]
    logged = read_predictions(Path(result["prediction_log"]))
    assert {c: sum(r["camera"] == c for r in logged) for c in cams} == {c: v["predictions"] for c, v in cams.items()}


def test_the_prediction_log_names_the_camera_and_an_older_log_gets_the_column(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # the predictions table as logs were written before cameras had names
    conn.execute(
        "CREATE TABLE predictions (frame_id INTEGER NOT NULL, capture_ns INTEGER NOT NULL, fused_ns INTEGER "
        "NOT NULL, class_id INTEGER NOT NULL, class_name TEXT NOT NULL, score REAL NOT NULL, label INTEGER, "
        "degraded INTEGER NOT NULL, missing_parts TEXT NOT NULL, parts TEXT NOT NULL, fusion_ms REAL NOT "
        "NULL)"
    )
    conn.execute("INSERT INTO predictions VALUES (1, 0, 0, 3, 'x', 0.5, NULL, 0, '[]', '[]', 0.1)")
    conn.commit()
    conn.close()
    log = PredictionLog(path, commit_interval=0.05)
    log.add_prediction(
        {
            "frame_id": 2,
            "camera": "yard",
            "capture_ns": 0,
            "fused_ns": 0,
            "class_id": 1,
            "class_name": "y",
            "score": 0.9,
            "label": None,
            "degraded": False,
            "missing_parts": [],
            "parts": [],
            "fusion_ms": 0.1,
        }
    )
    log.close()
    assert [(r["frame_id"], r["camera"]) for r in read_predictions(path)] == [(1, "cam0"), (2, "yard")]


def test_camera_options_that_do_not_fit_say_so_in_one_sentence(tiny_engines: Path, tmp_path: Path):  # noqa: F811
    run = _demo(
        [
            "--frames",
            "5",
            "--cameras",
            "3",
            "--camera-fps",
            "30,15",
            "--engines",
            str(tiny_engines),
            "--work-dir",
            str(tmp_path / "demo"),
            "--no-http",
        ],
        timeout=60,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "--camera-fps gives 2 rates for 3 cameras" in run.stderr
    run = _demo(["--frames", "5", "--camera-fps", "30,x", "--engines", str(tiny_engines)], timeout=60)
    assert run.returncode != 0 and "Traceback" not in run.stderr and "must be numbers" in run.stderr
