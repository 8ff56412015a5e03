"""The coordinator on the bus: runs beside the aggregator, publishes the retained fleet plan, serves engines.

It watches every board's retained availability and the agents' stats (their plan acknowledgements), asks
agent/coordinator.py what the plan should be every `tick_s` (with `aggregator.adopt`, it also reads the boards'
hellos), publishes a changed plan retained (QoS 1) on
`plan`, writes it to the prediction log, and says so in the log (a plan that leaves parts unplaced is a
warning: the fleet keeps answering degraded). Its own MQTT client (role `coordinator`) under the aggregator
board's identity, so the aggregator's fusion path is untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from vitfleet.agent.coordinator import Coordinator
from vitfleet.agent.engine_server import EngineServer
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.prediction_log import PredictionLog
from vitfleet.engines.runtime.manifest import read_manifest
from vitfleet.fleet_config import FleetConfig
from vitfleet.fleet_plan_message import FleetPlanMessage
from vitfleet.hello_message import BoardHello, HelloMessageError
from vitfleet.stats_message import STATS, AgentStats
from vitfleet.topics import Availability, Topics

log = logging.getLogger("vitfleet.coordinator")


class CoordinatorService:
    def __init__(
        self,
        fleet: FleetConfig,
        engines_dir: Path,
        board: str,
        prediction_log: PredictionLog | None,
        tick_s: float = 0.1,
    ) -> None:
        heal = fleet.aggregator.heal_after_s
        if heal is None:
            raise ValueError("the coordinator needs aggregator.heal_after_s")
        self.topics = Topics(fleet.name)
        self.log = prediction_log
        self.tick_s = tick_s
        self.server: EngineServer | None = None
        if fleet.aggregator.serve_engines:
            host = fleet.board(board).host if board in {b.name for b in fleet.boards} else "127.0.0.1"
            self.server = EngineServer(engines_dir, host, fleet.aggregator.engine_port)
        self.coordinator = Coordinator(
            fleet,
            read_manifest(engines_dir),
            heal,
            self.server.url if self.server else None,
            replan_hold_s=fleet.aggregator.replan_hold_s,
            adopt_boards=fleet.aggregator.adopt,
        )
        self.malformed = MalformedCounter(log)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="coordinator", daemon=True)
        subs = [
            (self.topics.all_boards("available"), 1),
            (self.topics.all_boards("stats"), 0),
            (self.topics.plan, 1),
        ] + ([(self.topics.all_boards("hello"), 1)] if fleet.aggregator.adopt else [])
        self.link = MqttLink(fleet.broker, fleet.name, "coordinator", board, self._on_message, subs)

    def _on_message(self, topic: str, payload: bytes) -> None:
        now = time.monotonic()
        if topic == self.topics.plan:
            self._on_retained_plan(payload)
            return
        where = self.topics.board_of(topic)
        if where is None:
            return
        board, leaf = where
        if leaf == "available":
            status = Availability.parse(payload)
            if status is not None:
                with self._lock:
                    self.coordinator.observe_availability(board, status, now)
        elif leaf == "hello":
            hello = self._hello(topic, payload) if payload else None
            if hello is not None and hello.board != board:
                self.malformed.record(topic, "hello", f"names board {hello.board!r} on {board!r}'s topic")
            elif hello is not None:
                with self._lock:
                    self.coordinator.observe_hello(hello)
        elif leaf == "stats":
            stats = self.malformed.parse_model(topic, payload, STATS, "stats")
            if isinstance(stats, AgentStats):  # other roles' stats carry no plan acknowledgement
                with self._lock:
                    self.coordinator.observe_ack(stats)
                    self.coordinator.observe_speed(stats, now)

    def _hello(self, topic: str, payload: bytes) -> BoardHello | None:
        try:
            return BoardHello.from_json(payload)
        except HelloMessageError as exc:
            self.malformed.record(topic, "hello", str(exc))
            return None

    def _on_retained_plan(self, payload: bytes) -> None:
        plan = self.malformed.parse_model(self.topics.plan, payload, FleetPlanMessage, "plan") if payload else None
        if plan is not None:
            with self._lock:
                if self.coordinator.plan is None:  # our own plans come back too: only a predecessor's is adopted
                    self.coordinator.adopt(plan)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                plan = self.coordinator.tick(time.monotonic())
            if plan is not None:
                self._announce(plan)

    def _announce(self, plan: FleetPlanMessage) -> None:
        self.link.publish(self.topics.plan, plan.model_dump_json(), qos=1, retain=True)
        if self.log is not None:
            self.log.add_plan(plan.model_dump())
        level = logging.WARNING if plan.unplaced else logging.INFO
        log.log(
            level,
            "plan %d: %s -> %s%s",
            plan.plan_id,
            plan.reason,
            plan.assignments,
            f"; parts {plan.unplaced} UNPLACED, answers stay degraded" if plan.unplaced else "",
        )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self.coordinator.stats()

    def start(self, connect_timeout: float = 10.0) -> CoordinatorService:
        if self.server is not None:
            self.server.start()
        self.link.start(wait=connect_timeout)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.link.stop()
        if self.server is not None:
            self.server.stop()
