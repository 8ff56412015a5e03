"""Home Assistant MQTT discovery: the fleet appears in Home Assistant as one device, off unless asked.

With `homeassistant: true` in fleet.yaml the aggregator publishes one retained config per entity under
`<prefix>/<component>/<node_id>/<object_id>/config` (Home Assistant's discovery topic layout; prefix
`homeassistant` by default). The entities read the fleet's existing topics, so nothing new is published per
frame: the prediction (class, score, degraded) from `predictions`, and per board its availability (the retained
`boards/<board>/available`), fps (`stats`) and, for agents, watts (`power`). Configs are republished on every
(re)connect, because a broker without persistence forgets retained messages when it restarts. `remove()`
publishes empty retained payloads, which is how Home Assistant is told to delete an entity.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from vitfleet import __version__
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.fleet_config import FleetConfig
from vitfleet.topics import Availability, Topics

# Home Assistant matches the retained availability payloads as text
ONLINE_TEXT, OFFLINE_TEXT = Availability.ONLINE.value, Availability.OFFLINE.value

log = logging.getLogger("vitfleet.homeassistant")

DISCOVERY_PREFIX = "homeassistant"
Component = Literal["sensor", "binary_sensor"]


class HaDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifiers: list[str]
    name: str
    model: str
    manufacturer: str
    sw_version: str


class HaEntity(BaseModel):
    """One discovery payload (the subset of Home Assistant's MQTT sensor / binary_sensor schema vitfleet uses)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    unique_id: str
    state_topic: str
    value_template: str | None = None
    json_attributes_topic: str | None = None
    json_attributes_template: str | None = None
    availability_topic: str | None = None
    payload_available: str | None = None
    payload_not_available: str | None = None
    payload_on: str | None = None  # binary_sensor
    payload_off: str | None = None
    unit_of_measurement: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    expire_after: int | None = None
    device: HaDevice
    origin: dict[str, str]

    def payload(self) -> str:
        return self.model_dump_json(exclude_none=True)


def _object_id(text: str) -> str:
    """Home Assistant's ids allow [a-zA-Z0-9_-]; board names may also hold dots."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def ha_node_id(fleet_name: str) -> str:
    """The fleet's node id in discovery topics (the broker ACL lets the aggregator write under it only)."""
    return _object_id(f"vitfleet_{fleet_name}")


def discovery_configs(fleet: FleetConfig, prefix: str = DISCOVERY_PREFIX) -> dict[str, HaEntity]:
    """Discovery topic -> entity config for this fleet."""
    topics = Topics(fleet.name)
    node = ha_node_id(fleet.name)
    device = HaDevice(
        identifiers=[node],
        name=f"vitfleet {fleet.name}",
        model=f"ViT fleet, {len(fleet.boards_with('agent'))} agent boards",
        manufacturer="vitfleet",
        sw_version=__version__,
    )
    common: dict[str, Any] = {"device": device, "origin": {"name": "vitfleet", "sw_version": __version__}}
    holders = fleet.boards_with("aggregator")
    # Predictions exist while the aggregator is up: its availability is theirs.
    agg_avail = (
        {
            "availability_topic": topics.available(holders[0].name),
            "payload_available": ONLINE_TEXT,
            "payload_not_available": OFFLINE_TEXT,
        }
        if holders
        else {}
    )
    out: dict[str, HaEntity] = {}

    def add(component: Component, object_id: str, **fields: Any) -> None:
        oid = _object_id(object_id)
        out[f"{prefix}/{component}/{node}/{oid}/config"] = HaEntity(unique_id=f"{node}_{oid}", **common, **fields)

    cameras = fleet.camera_names()
    for camera in cameras:
        # One camera keeps the entity ids a one-camera fleet always had; several get one set each.
        oid, label = ("", "") if len(cameras) == 1 else (f"{camera}_", f"{camera} ")
        state = topics.predictions(camera)
        add(
            "sensor",
            f"{oid}prediction",
            name=f"{label}Prediction".capitalize(),
            state_topic=state,
            value_template="{{ value_json.class_name }}",
            json_attributes_topic=state,
            json_attributes_template="{{ {'score': value_json.score, 'degraded': value_json.degraded, "
            "'missing_parts': value_json.missing_parts, 'frame_id': value_json.frame_id, "
            "'camera': value_json.camera} | tojson }}",
            icon="mdi:eye",
            **agg_avail,
        )
        add(
            "sensor",
            f"{oid}prediction_score",
            name=f"{label}Prediction score".capitalize(),
            state_topic=state,
            value_template="{{ (value_json.score * 100) | round(1) }}",
            unit_of_measurement="%",
            state_class="measurement",
            icon="mdi:percent",
            **agg_avail,
        )
        add(
            "binary_sensor",
            f"{oid}prediction_degraded",
            name=f"{label}Prediction degraded".capitalize(),
            state_topic=state,
            value_template="{{ 'ON' if value_json.degraded else 'OFF' }}",
            payload_on="ON",
            payload_off="OFF",
            device_class="problem",
            **agg_avail,
        )
    for board in fleet.boards:
        avail = {
            "availability_topic": topics.available(board.name),
            "payload_available": ONLINE_TEXT,
            "payload_not_available": OFFLINE_TEXT,
        }
        add(
            "binary_sensor",
            f"{board.name}_online",
            name=f"{board.name} online",
            state_topic=topics.available(board.name),
            payload_on=ONLINE_TEXT,
            payload_off=OFFLINE_TEXT,
            device_class="connectivity",
        )
        if not set(board.roles) & {"agent", "aggregator", "camera"}:
            continue  # a broker-only board publishes no stats
        add(
            "sensor",
            f"{board.name}_fps",
            name=f"{board.name} fps",
            state_topic=topics.stats(board.name),
            value_template="{{ value_json.fps }}",
            unit_of_measurement="fps",
            state_class="measurement",
            icon="mdi:speedometer",
            **avail,
        )
        if "agent" in board.roles:
            add(
                "sensor",
                f"{board.name}_power",
                name=f"{board.name} power",
                state_topic=topics.power(board.name),
                value_template="{{ value_json.watts }}",
                unit_of_measurement="W",
                device_class="power",
                state_class="measurement",
                **avail,
            )
    return out


class HomeAssistantDiscovery:
    """Publishes (and on request removes) the fleet's discovery configs over its own MQTT connection."""

    def __init__(self, fleet: FleetConfig, board: str = "discovery", prefix: str = DISCOVERY_PREFIX) -> None:
        self.configs = discovery_configs(fleet, prefix)
        self.published = threading.Event()
        self._pending: list[Any] = []  # the last round's publish handles, flushed on stop
        self.link = MqttLink(
            fleet.broker, fleet.name, "homeassistant", board, lambda _t, _p: None, on_connected=self._publish_all
        )

    def _publish_all(self) -> None:
        # Called from the network thread on every (re)connect: QoS 1, retained, so Home Assistant gets them
        # whenever it (re)subscribes to its discovery prefix.
        self._pending = [
            self.link.publish(topic, entity.payload(), qos=1, retain=True) for topic, entity in self.configs.items()
        ]
        self.published.set()
        log.info("published %d Home Assistant discovery configs", len(self.configs))

    def start(self, connect_timeout: float = 10.0) -> HomeAssistantDiscovery:
        self.link.start(wait=connect_timeout)
        # The configs go out from the connect callback, which may still be running: wait, so a stop right after
        # the start has them to flush.
        self.published.wait(connect_timeout)
        return self

    def stop(self) -> None:
        # The configs stay: Home Assistant shows the entities unavailable while the fleet is down. A stop right
        # after the start still delivers them first (bounded wait).
        for info in self._pending if self.link.connected.is_set() else []:
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                break
        self.link.stop()

    def remove(self, connect_timeout: float = 10.0) -> int:
        """Delete every entity from Home Assistant (an empty retained payload per config); returns how many."""
        link = MqttLink(self.link.broker, self.link.fleet, "homeassistant", "remove", lambda _t, _p: None)
        link.start(wait=connect_timeout)
        try:
            infos = [link.publish(topic, b"", qos=1, retain=True) for topic in self.configs]
            for info in infos:
                info.wait_for_publish(timeout=5.0)
        finally:
            link.stop()
        return len(self.configs)
