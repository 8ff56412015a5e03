"""What the live view shows, gathered from the fleet's own topics by one MQTT subscriber.

Latest prediction, each board's availability / stats / power, the aggregator's and the
camera node's figures; optionally the latest frame (for the OpenCV window).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.protocol import ProtocolError, decode_frame
from vitfleet.agent.topics import Topics
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.view")


class FleetView:
    def __init__(self, broker: BrokerConfig, fleet_name: str, with_frames: bool = False) -> None:
        self.topics = Topics(fleet_name)
        self.lock = threading.Lock()
        self.available: dict[str, str] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        self.power: dict[str, dict[str, Any]] = {}
        self.prediction: dict[str, Any] | None = None
        self.frame: np.ndarray | None = None
        self.frame_id: int | None = None
        self.predictions_seen = 0
        self.changed = threading.Event()
        self.malformed = MalformedCounter(log)
        subs = [(self.topics.predictions, 0), (self.topics.all_boards("available"), 1),
                (self.topics.all_boards("stats"), 0), (self.topics.all_boards("power"), 0)]
        if with_frames:
            subs.append((self.topics.frames, 0))
        self.link = MqttLink(broker, fleet_name, "view", "demo", self._on_message, subs)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.frames:
            try:
                msg = decode_frame(payload)
            except ProtocolError as exc:
                self.malformed.record(topic, exc.reason, str(exc))
                return
            with self.lock:
                self.frame, self.frame_id = msg.image, msg.frame_id
            return
        if topic == self.topics.predictions:
            data = self.malformed.parse_json(topic, payload)
            if isinstance(data, dict):
                with self.lock:
                    self.prediction = data
                    self.predictions_seen += 1
                self.changed.set()
            return
        where = self.topics.board_of(topic)
        if where is None:
            return
        board, leaf = where
        if leaf == "available":
            with self.lock:
                self.available[board] = bytes(payload).decode("utf-8", "replace")[:20]
        elif leaf in ("stats", "power"):
            data = self.malformed.parse_json(topic, payload)
            if isinstance(data, dict):
                with self.lock:
                    (self.stats if leaf == "stats" else self.power)[board] = data
        self.changed.set()

    def start(self) -> "FleetView":
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def wait_online(self, boards: list[str], timeout: float, alive: Any = None) -> list[str]:
        """Wait until every board published `online`; returns the ones still missing.

        `alive` (optional) is called while waiting and may raise to abort early (a child process died).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                missing = [b for b in boards if self.available.get(b) != "online"]
            if not missing:
                return []
            if alive is not None:
                alive()
            self.changed.wait(0.2)
            self.changed.clear()
        with self.lock:
            return [b for b in boards if self.available.get(b) != "online"]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"available": dict(self.available), "stats": {k: dict(v) for k, v in self.stats.items()},
                    "power": {k: dict(v) for k, v in self.power.items()},
                    "prediction": dict(self.prediction) if self.prediction else None,
                    "predictions_seen": self.predictions_seen}
