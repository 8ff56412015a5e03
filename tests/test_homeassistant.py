"""Home Assistant MQTT discovery on a real mosquitto: the retained configs are valid JSON with the fields Home
Assistant needs, their templates render (with Jinja2, as Home Assistant does) against the fleet's real message
types, they come back after a broker restart, and remove() deletes them with empty retained payloads."""

from __future__ import annotations

import json
import re
import threading
import time

import jinja2
import pytest
from mqtt_fixtures import wait_until

from vitfleet.agent.homeassistant import HomeAssistantDiscovery, discovery_configs
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet_config import BoardConfig, FleetConfig, parse_fleet
from vitfleet.power_message import PowerSnapshot
from vitfleet.prediction_message import PartTiming, Prediction

pytestmark = pytest.mark.timeout(60)

TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config$")


def _fleet(broker: LocalBroker) -> FleetConfig:
    return FleetConfig(
        name="home",
        broker=broker.config,
        homeassistant=True,
        boards=[
            BoardConfig(name="pi-a", roles=["agent"]),
            BoardConfig(name="pi.b", roles=["agent"]),
            BoardConfig(name="orin", roles=["agent", "aggregator", "camera", "broker"]),
        ],
    )


class Retained:
    """Every message under homeassistant/# one fresh subscriber receives (retained ones arrive first)."""

    def __init__(self, broker: LocalBroker) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, bytes] = {}
        self.link = MqttLink(broker.config, "ha-test", "test", "reader", self._on, [("homeassistant/#", 1)])

    def _on(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages[topic] = bytes(payload)

    def __enter__(self) -> Retained:
        self.link.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.stop()


def _render(template: str, payload: bytes) -> str:
    # Home Assistant renders value_template with Jinja2 and `value_json` bound to the parsed payload.
    return jinja2.Environment().from_string(template).render(value_json=json.loads(payload), value=payload.decode())


def test_homeassistant_is_off_by_default_and_a_fleet_yaml_key() -> None:
    boards = [{"name": "a"}]
    assert parse_fleet({"boards": boards}).homeassistant is False
    assert parse_fleet({"boards": boards, "homeassistant": True}).homeassistant is True


def test_discovery_configs_are_retained_json_with_the_fields_home_assistant_needs(broker: LocalBroker) -> None:
    fleet = _fleet(broker)
    publisher = HomeAssistantDiscovery(fleet).start()
    try:
        assert publisher.published.wait(5)
        with Retained(broker) as seen:
            assert wait_until(lambda: len(seen.messages) == len(publisher.configs), 5)
            messages = dict(seen.messages)
    finally:
        publisher.stop()
    # prediction, score, degraded; per board online + fps; per agent board watts (orin is all roles)
    assert len(messages) == 3 + 3 * 2 + 3
    configs = {t: json.loads(p) for t, p in messages.items()}
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, c in configs.items():
        assert TOPIC.match(topic), topic
        assert topic.split("/")[2] == "vitfleet_home"  # node_id: the fleet
        assert c["name"] and c["state_topic"].startswith("vitfleet/home/")
        # One device for the whole fleet.
        assert c["device"] == {
            "identifiers": ["vitfleet_home"],
            "name": "vitfleet home",
            "model": "ViT fleet, 3 agent boards",
            "manufacturer": "vitfleet",
            "sw_version": c["device"]["sw_version"],
        }
        if topic.startswith("homeassistant/sensor/"):
            assert c["availability_topic"].startswith("vitfleet/home/boards/") and c["availability_topic"].endswith(
                "/available"
            )
            assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
            assert c["value_template"].startswith("{{")
        if c.get("state_class") == "measurement":
            assert c["unit_of_measurement"]
    by_id = {c["unique_id"]: c for c in configs.values()}
    online = by_id["vitfleet_home_pi_b_online"]  # the dot is not allowed in ids
    assert online["device_class"] == "connectivity" and online["state_topic"] == "vitfleet/home/boards/pi.b/available"
    assert (online["payload_on"], online["payload_off"]) == ("online", "offline")
    power = by_id["vitfleet_home_pi-a_power"]
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == ("power", "measurement", "W")
    assert power["state_topic"] == "vitfleet/home/boards/pi-a/power"

    # The templates, rendered like Home Assistant does, against the messages the fleet really sends.
    pred = (
        Prediction(
            frame_id=7,
            camera="cam0",
            capture_ns=1,
            class_id=2,
            class_name="Pullover",
            score=0.93456,
            label=None,
            degraded=True,
            missing_parts=[1],
            parts=[
                PartTiming(part=0, frame_hop_ms=0.1, agent_ms=1.0, infer_ms=0.8, feature_hop_ms=0.1, arrival_ms=1.3)
            ],
            wait_ms=0.0,
            fusion_ms=0.1,
            fused_ns=2,
        )
        .model_dump_json()
        .encode()
    )
    assert _render(by_id["vitfleet_home_prediction"]["value_template"], pred) == "Pullover"
    attrs = json.loads(_render(by_id["vitfleet_home_prediction"]["json_attributes_template"], pred))
    assert attrs == {"score": 0.93456, "degraded": True, "missing_parts": [1], "frame_id": 7, "camera": "cam0"}
    assert _render(by_id["vitfleet_home_prediction_score"]["value_template"], pred) == "93.5"
    assert _render(by_id["vitfleet_home_prediction_degraded"]["value_template"], pred) == "ON"
    watts = PowerSnapshot(ts=time.time(), watts=4.81, joules=12.0, frames=3, source="rapl", estimated=False).to_json()
    assert _render(power["value_template"], watts) == "4.81"
    stats = json.dumps({"board": "pi-a", "role": "agent", "ts": 1.0, "fps": 9.75, "malformed": 0}).encode()
    assert _render(by_id["vitfleet_home_pi-a_fps"]["value_template"], stats) == "9.75"


def test_configs_come_back_after_a_broker_restart(broker: LocalBroker) -> None:
    publisher = HomeAssistantDiscovery(_fleet(broker)).start()
    try:
        broker.restart()  # persistence off: the retained configs are gone with it
        assert wait_until(lambda: publisher.link.connects >= 2, 10)
        with Retained(broker) as seen:
            assert wait_until(lambda: len(seen.messages) == len(publisher.configs), 5)
    finally:
        publisher.stop()


def test_remove_publishes_empty_retained_configs(broker: LocalBroker) -> None:
    publisher = HomeAssistantDiscovery(_fleet(broker)).start()
    publisher.stop()
    with Retained(broker) as seen:
        assert wait_until(lambda: len(seen.messages) == len(publisher.configs), 5)
        assert publisher.remove() == len(publisher.configs)
        # Home Assistant deletes an entity on an empty config payload.
        assert wait_until(lambda: all(p == b"" for p in seen.messages.values()), 5)
    with Retained(broker) as fresh:
        time.sleep(0.5)
        assert fresh.messages == {}  # nothing retained any more


def test_configs_have_one_entity_per_topic_for_a_fleet_without_an_aggregator(broker: LocalBroker) -> None:
    fleet = FleetConfig(name="x", broker=broker.config, boards=[BoardConfig(name="solo", roles=["broker"])])
    configs = {t: json.loads(e.payload()) for t, e in discovery_configs(fleet).items()}
    # No aggregator: the prediction entities carry no availability; a broker-only board has no stats to show.
    assert "availability_topic" not in configs["homeassistant/sensor/vitfleet_x/prediction/config"]
    assert sorted(t.split("/")[3] for t in configs) == [
        "prediction",
        "prediction_degraded",
        "prediction_score",
        "solo_online",
    ]
