"""The typed wire messages: stats per role told apart by `role`, availability from one enum,
deploy's availability check over the fleet's one MQTT client, and readers that count garbage instead of
crashing."""

from __future__ import annotations

import json
import logging

from hypothesis import given, settings
from hypothesis import strategies as st
from mqtt_fixtures import broker  # noqa: F401 - the fixture

from vitfleet.agent.board_reports import BoardReports
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.firmware_scripts.availability import wait_online
from vitfleet.fleet_config import BoardConfig, FleetConfig
from vitfleet.stats_message import STATS, AgentStats, AggregatorStats, CameraStats, first_of, of_role
from vitfleet.topics import OFFLINE, ONLINE, Availability, Topics


def test_stats_round_trip_by_role_and_keep_unknown_keys() -> None:
    sent = [
        AgentStats(board="a0", ts=1.0, fps=2.0, part=0, parts=[0], frames=5, drops=1),
        AggregatorStats(board="agg", ts=1.0, fps=2.0, predictions=3, fleet_watts=4.5),
        CameraStats(board="cam", ts=1.0, fps=2.0, frames_sent=9, e2e_p50_ms=3.5),
    ]
    got = {s.board: STATS.validate_json(s.to_json()) for s in sent}
    assert [type(got[s.board]) for s in sent] == [AgentStats, AggregatorStats, CameraStats]
    assert (
        got["a0"] == sent[0]
        and first_of(got, AggregatorStats) == sent[1]
        and list(of_role(got, CameraStats)) == ["cam"]
    )
    # the wire keys are the ones docs/protocol.md lists (JSON keys unchanged by the models)
    assert {
        "board",
        "role",
        "ts",
        "fps",
        "malformed",
        "part",
        "parts",
        "plan_id",
        "failed_parts",
        "part_mem_mb",
        "frames",
        "infer_p50_ms",
        "own_fps",
        "slowdown",
        "drops",
        "cpu_percent",
        "rss_mb",
    } <= set(json.loads(sent[0].to_json()))
    newer = {**json.loads(sent[2].to_json()), "from_a_newer_board": 1}  # readers keep working with newer boards
    assert isinstance(STATS.validate_python(newer), CameraStats)


def test_availability_payloads_come_from_one_enum() -> None:
    assert (ONLINE, OFFLINE) == (b"online", b"offline")
    assert Availability.parse(b"online") is Availability.ONLINE and Availability.ONLINE == "online"
    assert Availability.parse(b"maybe") is None and Availability.parse(b"\xff") is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["available", "stats", "power", "other"]),
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["board", "role", "ts", "fps", "parts", "watts", "x"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(max_size=10),
                st.sampled_from(["agent", "camera"]),
            ),
            max_size=6,
        ).map(lambda d: json.dumps(d).encode()),
    ),
)
def test_board_reports_count_garbage_and_never_raise(leaf: str, payload: bytes) -> None:
    counter = MalformedCounter(logging.getLogger("test"), interval=3600)
    reports = BoardReports(counter)
    taken = reports.take(f"vitfleet/f/boards/b/{leaf}", "b", leaf, payload)
    assert taken != (counter.total == 1)


def test_deploy_availability_check_reads_the_retained_state(broker) -> None:  # noqa: F811
    fleet = FleetConfig(name="alpha", broker=broker.config, boards=[BoardConfig(name="b1"), BoardConfig(name="b2")])
    topics = Topics(fleet.name)
    board = MqttLink(broker.config, fleet.name, "agent", "b1", lambda t, p: None).start()
    try:
        board.publish(topics.available("b1"), ONLINE, qos=1, retain=True).wait_for_publish(2)
    finally:
        board.stop()
    assert wait_online(fleet, broker.config, ["b1", "b2"], ["brokerbox"], timeout=1.5) == {
        "b1": "online",
        "b2": "unknown",
        "brokerbox": "online",
    }
    broker.close()
    assert set(wait_online(fleet, broker.config, ["b1"], [], timeout=1.0).values()) == {"broker unreachable"}
