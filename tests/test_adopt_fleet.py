"""Boards announce themselves: an agent started with only a broker address says hello (retained), `vitfleet deploy
discover` lists it with its fleet.yaml stanza, and with `aggregator.adopt: true` the coordinator gives it parts.

Real mosquitto, real `vitfleet` processes, the engines tests' int8 ONNX Runtime engines (K = 2). The fleet file
names one agent board, so both parts run on it; the newcomer holds only the fleet's manifest (no engine), so the
part it is given is fetched from the coordinator's engine server and sha256-checked. Must show: listed by discover,
serving a part within 5 s of its start, no admitted frame lost.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401 - fixtures
from test_reliability_fixtures import wait_until

from vitfleet.agent.engine_fetch import copy_part_engines
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.prediction_log import read_plans
from vitfleet.fleet_config import FleetConfig
from vitfleet.hello_message import BoardHello
from vitfleet.topics import Topics

pytestmark = [pytest.mark.timeout(180, func_only=True)]

ADOPT_WITHIN_S = 5.0


def _profiled_speed() -> float:
    """This machine's GFLOP/s measured as an agent measures it for its hello: a fresh process with one BLAS thread
    (an agent limits its threads before numpy starts its pool)."""
    code = (
        "from vitfleet.agent.engine_loading import limit_threads; limit_threads(1); "
        "from vitfleet.agent.hello import measure_speed; print(measure_speed())"
    )
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    )


def _one_board_adopting(fleet: FleetConfig) -> None:
    """One agent board, profiled on this machine with the benchmark the newcomer's hello reports (as `vitfleet
    deploy profile` would), so the two speeds compare like for like."""
    fleet.boards = [b for b in fleet.boards if b.name != "agent1"]
    fleet.board("agent0").speed = _profiled_speed()
    fleet.aggregator.adopt = True


def _hellos(broker, fleet_name: str) -> dict[str, BoardHello]:
    got: dict[str, BoardHello] = {}
    topics = Topics(fleet_name)

    def on_message(topic: str, payload: bytes) -> None:
        got[topics.board_of(topic)[0]] = BoardHello.model_validate_json(payload)

    link = MqttLink(broker, fleet_name, "test", "hello-reader", on_message, [(topics.all_boards("hello"), 1)])
    link.start()
    time.sleep(0.5)
    link.stop()
    return got


def test_a_board_with_only_a_broker_address_is_discovered_and_serves_a_part_within_5_s(
    broker,
    fleet_engines: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    fleet = Fleet(broker, fleet_engines, tmp_path, deadline_ms=1000.0, heal_after_s=2.0, tweak=_one_board_adopting)
    fleet.agents = ["agent0"]
    newcomer = None
    try:
        fleet.start()
        assert fleet.config is not None and fleet.broker is not None
        assert wait_until(
            lambda: (read_plans(fleet.log_path) or [{}])[-1].get("assignments") == {"agent0": [0, 1]}, 15
        ), read_plans(fleet.log_path)
        node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=20, duration=100, drain=3.0)
        assert wait_until(lambda: node.counts["predictions"] >= 10, 30), node.counts
        board = socket.gethostname()
        fresh = copy_part_engines(fleet_engines, tmp_path / "newcomer-engines", [])  # the manifest, no engine
        started = time.time()
        newcomer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vitfleet.cli",
                "agent",
                "--broker",
                f"{fleet.broker.host}:{fleet.broker.port}",
                "--engines",
                str(fresh),
                "--stats-interval",
                "0.5",
                "--log-level",
                "info",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert wait_until(lambda: board in _hellos(fleet.broker, fleet.config.name), 30)
        hello = _hellos(fleet.broker, fleet.config.name)[board]
        assert hello.parts == [] and hello.memory_mb > 0 and hello.cores > 0 and hello.speed and hello.speed > 0

        def serving() -> bool:
            stats = fleet.view.stats_of(board)
            return stats is not None and getattr(stats, "parts", None) == [1] and stats.frames > 0

        assert wait_until(serving, 20, step=0.1), (
            [p["reason"] for p in read_plans(fleet.log_path)],
            fleet.config.board("agent0").speed,
            hello.speed,
        )
        served_at = time.time()
        bad = MqttLink(fleet.broker, fleet.config.name, "test", "bad-hello", lambda *_: None)
        bad.start()
        bad.publish(
            Topics(fleet.config.name).hello("broken-board"),
            b'{"board": "broken-board", "cores": "two"}',
            qos=1,
            retain=True,
        ).wait_for_publish(5)
        bad.stop()
        discovered = subprocess.run(
            [
                sys.executable,
                "-m",
                "vitfleet.cli",
                "deploy",
                "discover",
                "--fleet",
                str(fleet.fleet_file),
                "--wait",
                "1",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert discovered.returncode == 0, discovered.stderr[-2000:]
        listing = json.loads(discovered.stdout)
        count = node.counts["predictions"]
        assert wait_until(lambda: node.counts["predictions"] >= count + 20, 20)  # the adopted fleet answers
        node.stop()
        thread.join(20)
        plans = read_plans(fleet.log_path)
        fleet.procs.check_alive()
    finally:
        if newcomer is not None:
            newcomer.terminate()
            out = newcomer.communicate(timeout=20)[0]
            print(out[-3000:])
        fleet.stop()
    assert [b["board"] for b in listing["boards"]] == [board]
    why = listing["malformed"]["broken-board"]  # a bad hello is named in one sentence, never a traceback
    assert why.startswith("board hello: ") and "\n" not in why, why
    assert f"- name: {board}" in listing["stanza"] and f"memory_mb: {hello.memory_mb}" in listing["stanza"]
    assert plans[-1]["assignments"] == {"agent0": [0], board: [1]}, [p["reason"] for p in plans]
    assert (fresh / fleet.manifest.lookup("part", 1, "onnxruntime").file).exists()  # fetched, sha256-checked
    adopt_s, start_s = served_at - hello.ts, served_at - started
    print(f"adopted: hello -> serving part 1 in {adopt_s:.2f} s ({start_s:.2f} s from the process start)")
    assert start_s <= ADOPT_WITHIN_S and adopt_s <= start_s, (start_s, adopt_s)
    assert node.result["lost"] == 0 and node.result["answered_late"] == 0, node.result
