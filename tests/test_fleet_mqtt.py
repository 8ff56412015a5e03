"""MQTT plumbing against a real mosquitto: socket options, ids, reconnect, the hop latency, floods of garbage."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pytest
from mqtt_fixtures import wait_until

from vitfleet.agent.camera_node import CameraNode
from vitfleet.agent.mqtt_client import BrokerUnreachable, MqttLink, Will
from vitfleet.camera.sources import open_source
from vitfleet.fleet.hop_probe import measure_hop
from vitfleet.fleet.local_broker import BrokerStartError, LocalBroker, broker_conf
from vitfleet.fleet_config import BrokerConfig
from vitfleet.topics import OFFLINE, ONLINE, Topics

pytestmark = pytest.mark.timeout(60)


def _collector(broker, topic, name="collector"):
    got: list[tuple[str, bytes]] = []
    ev = threading.Event()

    def on_message(t, p):
        got.append((t, bytes(p)))
        ev.set()

    return MqttLink(broker.config, "t", "test", name, on_message, [(topic, 1)]).start(), got, ev


def test_broker_config_sets_nodelay_and_queue(tmp_path):
    conf = broker_conf(1234, "127.0.0.1", tmp_path / "log", 5000)
    assert "set_tcp_nodelay true" in conf and "max_queued_messages 5000" in conf and "listener 1234 127.0.0.1" in conf


def test_client_socket_has_tcp_nodelay_and_unique_id(broker):
    a = MqttLink(broker.config, "t", "agent", "same", lambda t, p: None).start()
    b = MqttLink(broker.config, "t", "agent", "same", lambda t, p: None).start()
    try:
        sock = a.client.socket()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert a.client._client_id != b.client._client_id
        time.sleep(0.3)  # same names, different ids: the broker keeps both connected
        assert a.connected.is_set() and b.connected.is_set()
    finally:
        a.stop()
        b.stop()


def test_unreachable_broker_is_a_clear_error():
    cfg = BrokerConfig(host="127.0.0.1", port=LocalBroker().port)  # a free port nobody listens on
    with pytest.raises(BrokerUnreachable, match="no MQTT broker answered"):
        MqttLink(cfg, "t", "agent", "x", lambda t, p: None).start(wait=1.0)


def test_port_in_use_is_reported(broker):
    with pytest.raises(BrokerStartError, match="already in use"):
        LocalBroker(port=broker.port).start(timeout=3)


def test_last_will_and_retained_availability(broker):
    topics = Topics("t")
    watcher, got, ev = _collector(broker, topics.all_boards("available"))
    agent = MqttLink(
        broker.config,
        "t",
        "agent",
        "b1",
        lambda t, p: None,
        will=Will(topics.available("b1"), OFFLINE),
        online=Will(topics.available("b1"), ONLINE),
    )
    agent.start()
    try:
        assert wait_until(lambda: (topics.available("b1"), ONLINE) in got)
        # An abrupt loss (no DISCONNECT): the broker publishes the will.
        agent.client.socket().shutdown(socket.SHUT_RDWR)
        agent.client.loop_stop()
        assert wait_until(lambda: got[-1] == (topics.available("b1"), OFFLINE), 5.0)
        # Retained: a late subscriber learns the status at once.
        late, late_got, _ = _collector(broker, topics.available("b1"), "late")
        assert wait_until(lambda: late_got == [(topics.available("b1"), OFFLINE)])
        late.stop()
    finally:
        watcher.stop()


def test_subscriptions_survive_a_broker_restart(broker):
    got, ev = [], threading.Event()
    sub = MqttLink(broker.config, "t", "test", "sub", lambda t, p: (got.append(p), ev.set()), [("x/#", 0)]).start()
    pub = MqttLink(broker.config, "t", "test", "pub", lambda t, p: None).start()
    try:
        broker.restart()
        t0 = time.monotonic()
        assert wait_until(lambda: sub.connected.is_set() and pub.connected.is_set(), 5.0)
        reconnect_s = time.monotonic() - t0
        # Subscriptions are renewed in on_connect: traffic flows again without any action.
        assert wait_until(lambda: (pub.publish("x/1", b"after"), ev.wait(0.1))[1], 3.0)
        assert b"after" in got and sub.connects == 2 and reconnect_s < 3.0
    finally:
        sub.stop()
        pub.stop()


def test_mqtt_hop_measurement_loses_nothing(broker):
    """Agent publish -> aggregator callback for a 192-float16 feature message at 500 msg/s.

    The hop figure itself (goal p50 <= 0.5 ms, p99 <= 2 ms) is a benchmark, printed here and recorded
    in docs/benchmarks.md, never a timed assert: on a shared machine it measures the scheduler.
    What must hold at any load: every message arrives once, and each hop is a real, finite duration.
    TCP_NODELAY, the cure for the 40 ms Nagle stall, is checked on the socket in the test above.
    """
    runs = [measure_hop(broker.config, count=1000) for _ in range(3)]
    assert all(len(r) == 1000 for r in runs)  # nothing lost at QoS 0 on loopback
    for r in runs:
        arr = np.asarray(r, dtype=float)
        assert np.all(np.isfinite(arr)) and np.all(arr > 0)
    p50 = min(float(np.percentile(r, 50)) for r in runs)
    p99 = min(float(np.percentile(r, 99)) for r in runs)
    print(f"MQTT hop p50 {p50:.3f} ms, p99 {p99:.3f} ms (load {os.getloadavg()[0]:.1f})")
    assert p50 <= p99


def test_camera_node_survives_1000_malformed_predictions(broker):
    topics = Topics("t")
    node = CameraNode(
        broker.config,
        "t",
        "cam",
        open_source("synthetic://?size=8&count=100000"),
        fps=50,
        max_frames=None,
        duration=4.0,
        drain=0.1,
    )
    runner = threading.Thread(target=lambda: setattr(node, "result", node.run()))
    runner.start()
    spammer = MqttLink(broker.config, "t", "test", "spam", lambda t, p: None).start()
    try:
        assert wait_until(lambda: node.link.connected.is_set())
        time.sleep(0.2)
        rng = np.random.default_rng(0)
        bad = [
            b"",
            b"\xff\xfe",
            b"[]",
            b"{}",
            b"null",
            json.dumps({"frame_id": "x"}).encode(),
            json.dumps(
                {
                    "frame_id": 1,
                    "class_id": 1,
                    "capture_ns": 1,
                    "degraded": False,
                    "parts": [{}],
                    "fusion_ms": 0.1,
                    "fused_ns": 1,
                }
            ).encode(),
        ]
        for i in range(1000):
            payload = bad[i % len(bad)] if i % 2 else rng.bytes(int(rng.integers(1, 300)))
            spammer.publish(topics.predictions("cam0"), payload, qos=1)
        assert wait_until(lambda: node.malformed.total >= 1000, 10.0)
        assert node.malformed.total == 1000 and node.link.callback_errors == 0
        assert node.link.connected.is_set()
    finally:
        spammer.stop()
        runner.join(timeout=10)
    # It kept reading its camera throughout; with no fleet answering, its two credits stay taken, so every
    # later frame is skipped instead of published (admission, docs/protocol.md).
    result = node.result
    assert result["offered"] > 50 and result["admitted"] == 2 and result["skipped"] == result["offered"] - 2
    # Both admitted frames went unanswered: lost, and the summary says so.
    assert result["lost"] == 2 and result["ok"] is False
