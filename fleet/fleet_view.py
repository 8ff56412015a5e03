"""What the live view shows, gathered from the fleet's own topics by one MQTT subscriber.

Latest prediction, each board's availability / stats / power, the aggregator's and the
camera node's figures; optionally the latest frame (for the OpenCV window).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitfleet.agent.board_reports import BoardReports
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.protocol import ProtocolError, decode_frame
from vitfleet.prediction_message import Prediction
from vitfleet.stats_message import Stats
from vitfleet.topics import Availability, Topics
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.view")


class FleetView:
    def __init__(self, broker: BrokerConfig, fleet_name: str, with_frames: bool = False) -> None:
        self.topics = Topics(fleet_name)
        self.lock = threading.Lock()
        self.malformed = MalformedCounter(log)
        self.reports = BoardReports(self.malformed)
        # the live fields, shared with self.reports: read them under self.lock
        self.available, self.stats, self.power = self.reports.available, self.reports.stats, self.reports.power
        self.prediction: Prediction | None = None
        self.frame: np.ndarray | None = None
        self.frame_id: int | None = None
        self.predictions_seen = 0
        self.changed = threading.Event()
        subs = [(self.topics.all_predictions, 0), (self.topics.all_boards("available"), 1),
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
        if self.topics.camera_of(topic) is not None:
            pred = self.malformed.parse_model(topic, payload, Prediction, "prediction")
            if pred is not None:
                with self.lock:
                    self.prediction = pred
                    self.predictions_seen += 1
                self.changed.set()
            return
        where = self.topics.board_of(topic)
        if where is None:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        with self.lock:
            self.reports.take(topic, *where, payload)
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
                missing = [b for b in boards if self.available.get(b) != Availability.ONLINE]
            if not missing:
                return []
            if alive is not None:
                alive()
            self.changed.wait(0.2)
            self.changed.clear()
        with self.lock:
            return [b for b in boards if self.available.get(b) != Availability.ONLINE]

    def stats_of(self, board: str) -> Stats | None:
        """The board's latest stats (an AgentStats, AggregatorStats or CameraStats), None before any arrived."""
        with self.lock:
            return self.stats.get(board)

    def snapshot(self) -> ViewSnapshot:
        with self.lock:
            return ViewSnapshot(self.reports.copy(), self.prediction, self.predictions_seen)


@dataclass(frozen=True)
class ViewSnapshot:
    """What the view knew at one instant (decoded models; safe to read without the view's lock)."""

    reports: BoardReports
    prediction: Prediction | None
    predictions_seen: int
