"""Measure the MQTT hop the fleet depends on: a feature message from publish to the subscriber's callback.

The same message size, QoS, client setup and broker settings as agent -> aggregator;
used by the tests and by `vitfleet demo`'s report.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.protocol import FeatureMessage, decode_features, encode_features
from vitfleet.fleet_config import BrokerConfig
from vitfleet.topics import Topics


def measure_hop(
    broker: BrokerConfig, count: int = 1000, rate_hz: float = 500.0, dim: int = 192, fleet: str = "hop"
) -> np.ndarray:
    """Hop times in ms (agent publish -> aggregator receive) for `count` feature messages."""
    topics = Topics(fleet)
    hops: list[float] = []
    done = threading.Event()

    def on_message(topic: str, payload: bytes) -> None:
        now = time.time_ns()
        msg = decode_features(payload, expected_dim=dim)
        hops.append((now - msg.sent_ns) / 1e6)
        if len(hops) >= count:
            done.set()

    receiver = MqttLink(broker, fleet, "aggregator", "probe", on_message, [(topics.all_features, 0)]).start()
    sender = MqttLink(broker, fleet, "agent", "probe", lambda t, p: None).start()
    try:
        time.sleep(0.2)  # the subscription is acknowledged before the first message
        vec = np.random.default_rng(0).standard_normal(dim).astype(np.float32)
        period = 1.0 / rate_hz
        next_t = time.perf_counter()
        for i in range(count):
            next_t += period
            while time.perf_counter() < next_t:
                time.sleep(max(0.0, min(0.0005, next_t - time.perf_counter())))
            sender.publish(topics.features(0), encode_features(FeatureMessage(i, 0, 0, vec, 0, time.time_ns(), 0)))
        done.wait(5.0)
    finally:
        sender.stop()
        receiver.stop()
    return np.asarray(hops)
