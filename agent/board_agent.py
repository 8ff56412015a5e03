"""The board agent: frames in, this board's parts of the model, one feature message per part out.

Network thread: decode and validate each frame, queue it (at most the fleet's admission
credits deep, agent/frame_queue.py; overflow drops the oldest, counted). Inference thread:
take the oldest waiting frame, preprocess exactly as training did (once), run every hosted part's engine on it
and publish each part's float16 features with the timings the aggregator needs. A stats message every few
seconds; availability is a retained "online" with a last will "offline".

Parts: the one the board was started with, until the fleet plan (retained on `plan`, published by the
aggregator) names this board; from then on the plan's parts. A plan thread loads parts the plan adds (fetching
their engines when missing, agent/plan_follower.py) while inference goes on, then swaps the hosted set at once,
and acknowledges the plan in an immediate stats message. Without a plan (healing off) nothing changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vitfleet.agent.admission import CreditGate
from vitfleet.agent.camera_loop import CameraFeed, CameraLoop, Sent
from vitfleet.agent.frame_queue import FrameQueue
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink, Will
from vitfleet.agent.own_rate import RecentOwnRate
from vitfleet.agent.plan_follower import PartLoader, follow
from vitfleet.agent.power_link import PowerLink
from vitfleet.agent.process_stats import ProcessStats
from vitfleet.agent.protocol import (
    FeatureMessage,
    FrameMessage,
    ProtocolError,
    decode_frame,
    encode_features,
    encode_frame,
)
from vitfleet.agent.rolling import RateMeter, RollingLatency
from vitfleet.agent.slow_board import SlowBoardEmulation
from vitfleet.camera.frame_source import Frame
from vitfleet.fleet_config import BrokerConfig
from vitfleet.fleet_plan_message import FleetPlanMessage
from vitfleet.hello_message import BoardHello
from vitfleet.power.cpu_limit import cpu_limit_cores
from vitfleet.power.throttle import read_or_none, throttle_reader
from vitfleet.power.throttle_measured import with_measured
from vitfleet.prediction_message import Prediction
from vitfleet.preprocessing import Preprocessing
from vitfleet.stats_message import AgentStats
from vitfleet.topics import OFFLINE, ONLINE, Topics

log = logging.getLogger("vitfleet.agent")


class PartEngine(Protocol):
    feature_dim: int

    def infer(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class _Pending:
    frame: FrameMessage
    recv_ns: int


@dataclass
class AgentOptions:
    """How the agent runs (fleet.yaml and the command line)."""

    board_kind: str = "cpu"  # picks the power meter and the throttling reader
    stats_interval: float = 2.0
    slowdown: float = 1.0  # > 1: behave like a board this many times slower (agent/slow_board.py)
    max_in_flight: int = 2  # the fleet's admission credits: the frame queue is as deep


class BoardAgent:
    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        board: str,
        part: int | None,
        engine: PartEngine | None,
        preprocessing: Preprocessing | None,
        options: AgentOptions | None = None,
        camera: CameraFeed | None = None,
        loader: PartLoader | None = None,
        hello: Callable[[str | None], BoardHello] | None = None,
    ) -> None:
        """`part`/`engine`: what it starts with (None: a spare, until the plan gives it parts); `camera`: its own
        camera (`--camera`), which it reads, admits and shares with the fleet as a camera node would."""
        opts = options or AgentOptions()
        board_kind, stats_interval, max_in_flight = opts.board_kind, opts.stats_interval, opts.max_in_flight
        self.topics = Topics(fleet_name)
        self.board, self.pre = board, preprocessing
        # part -> engine. Replaced as a whole (never mutated) so the inference thread reads one consistent set.
        self.hosted: dict[int, PartEngine] = {part: engine} if part is not None and engine is not None else {}
        self.loader = loader
        self.plan_id: int | None = None  # the plan this agent follows (None: none seen yet)
        self.failed_parts: dict[int, str] = {}  # parts the plan asked for that could not be loaded, and why
        self.part_mem_mb: dict[int, float] = {}
        self._plan_inbox: FleetPlanMessage | None = None
        self._plan_wake = threading.Event()
        self._plan_seen = -1
        self.stats_interval = stats_interval
        self.slot: FrameQueue[_Pending] = FrameQueue(max_in_flight)
        self.malformed = MalformedCounter(log)
        self.infer_ms = RollingLatency(1000)
        self.total_ms = RollingLatency(1000)
        self.rate = RateMeter()
        self.errors = 0
        # Emulates a board `slowdown` times slower than this one (agent/slow_board.py). 1.0 on real boards.
        self.emulation = SlowBoardEmulation(opts.slowdown)
        self.busy_s = 0.0  # time spent on frames: the board's own rate is frames / busy_s
        self.own_rate = RecentOwnRate()
        self.throttle = throttle_reader(board_kind)
        self.proc = ProcessStats()
        self._stop = threading.Event()
        self._camera = camera
        self.power = PowerLink(board_kind)
        # With a local camera the agent is its own frame source: it feeds itself and shares the frames, and admits
        # them with the camera node's loop (agent/camera_loop.py), so it reads the predictions that return credits.
        self.gate: CreditGate[Sent] = CreditGate(max_in_flight)
        self.camera_loop = None if camera is None else CameraLoop([camera], self.gate, self._stop)
        # Its camera is the fleet's camera 0; whatever the fleet calls it, the frame ids it admitted say which
        # predictions return its credits.
        subs = [(self.topics.all_predictions, 1)] if camera is not None else [(self.topics.frames, 0)]
        if loader is not None:  # able to load parts: follow the fleet plan
            subs.append((self.topics.plan, 1))
        self.hello = hello
        self.link = MqttLink(
            broker,
            fleet_name,
            "agent",
            board,
            self._on_message,
            subs,
            will=Will(self.topics.available(board), OFFLINE),
            online=Will(self.topics.available(board), ONLINE),
            on_connected=self._say_hello if hello is not None else None,
        )
        self._threads: list[threading.Thread] = []

    def _say_hello(self) -> None:
        """On every connect (a broker restarted without persistence has forgotten the retained one)."""
        assert self.hello is not None
        try:
            host = self.link.client.socket().getsockname()[0]
        except (AttributeError, OSError, IndexError):
            host = None
        self.link.client.publish(self.topics.hello(self.board), self.hello(host).model_dump_json(), qos=1, retain=True)

    def _on_message(self, topic: str, payload: bytes) -> None:
        recv_ns = time.time_ns()
        if self.topics.camera_of(topic) is not None and self._camera is not None:
            self._on_prediction(topic, payload)
            return
        if topic == self.topics.plan and self.loader is not None:
            self._on_plan(topic, payload)
            return
        if topic != self.topics.frames:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        try:
            frame = decode_frame(payload)
        except ProtocolError as exc:
            self.malformed.record(topic, exc.reason, str(exc))
            return
        self.slot.put(_Pending(frame, recv_ns))

    def _on_prediction(self, topic: str, payload: bytes) -> None:
        try:
            prediction = Prediction.model_validate_json(payload)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            self.malformed.record(topic, "prediction", str(exc).splitlines()[0])
            return
        self.gate.answer(prediction.frame_id)

    @property
    def part(self) -> int | None:
        """The first hosted part (the stats' `part`, as before plans existed)."""
        return next(iter(self.hosted), None)

    def _on_plan(self, topic: str, payload: bytes) -> None:
        if not payload:  # the retained plan was cleared
            return
        plan = self.malformed.parse_model(topic, payload, FleetPlanMessage, "plan")
        if plan is None or plan.plan_id <= self._plan_seen:
            return  # a re-delivery (reconnect) or an older plan
        self._plan_seen = plan.plan_id
        self._plan_inbox = plan  # only the newest matters: a plan superseded while loading is skipped
        self._plan_wake.set()

    def _plan_loop(self) -> None:
        while not self._stop.is_set():
            if not self._plan_wake.wait(0.2):
                continue
            self._plan_wake.clear()
            plan, self._plan_inbox = self._plan_inbox, None
            if plan is not None:
                self._apply_plan(plan)

    def _apply_plan(self, plan: FleetPlanMessage) -> None:
        wanted = plan.parts_of(self.board)
        if wanted is None:  # not named: keep what runs (a board the coordinator has not seen yet)
            self.plan_id = plan.plan_id
            self._publish_stats()
            return
        assert self.loader is not None
        outcome = follow(wanted, self.hosted, self.loader, plan.engines_url, self._warm)
        dropped = sorted(set(self.hosted) - set(outcome.engines))
        self.hosted = outcome.engines
        self.failed_parts = outcome.failed
        self.part_mem_mb = {**{p: m for p, m in self.part_mem_mb.items() if p in outcome.engines}, **outcome.mem_mb}
        self.plan_id = plan.plan_id
        log.info(
            "plan %d (%s): running parts %s%s%s",
            plan.plan_id,
            plan.reason,
            sorted(outcome.engines),
            f", dropped {dropped}" if dropped else "",
            f", refused {sorted(outcome.failed)}" if outcome.failed else "",
        )
        self._publish_stats()  # the acknowledgement: the coordinator waits for it to finish a move

    def _infer_loop(self) -> None:
        while not self._stop.is_set():
            item = self.slot.take(timeout=0.2)
            if item is None:
                continue
            try:
                self._process(item)
            except Exception:  # noqa: BLE001 - one bad frame must not stop the agent
                self.errors += 1
                if self.errors <= 3 or self.errors % 100 == 0:
                    log.exception("inference failed on frame %d (%d errors so far)", item.frame.frame_id, self.errors)

    def _process(self, item: _Pending) -> None:
        hosted = self.hosted  # one consistent set for this frame, whatever a plan swaps in meanwhile
        if not hosted:
            return
        t0 = time.perf_counter()
        assert self.pre is not None, "a board with parts has its manifest's preprocessing"
        x = self.pre.normalize(self.pre.prepare(item.frame.image))  # once, shared by every hosted part
        busy_from = t0  # the first part also pays the preprocessing
        for part, engine in hosted.items():
            t1 = time.perf_counter()
            features = engine.infer(x)
            t2 = time.perf_counter()
            if self.emulation.active:
                self._stop.wait(self.emulation.extra_seconds(t2 - busy_from))
            busy_from = time.perf_counter()
            msg = FeatureMessage(
                item.frame.frame_id,
                item.frame.capture_ns,
                part,
                np.asarray(features, dtype=np.float32).reshape(-1),
                item.recv_ns,
                time.time_ns(),
                int((t2 - t1) * 1e6),
                item.frame.label,
                item.frame.camera,
            )
            self.link.publish(self.topics.features(part), encode_features(msg))
            self.infer_ms.add((t2 - t1) * 1e3)
        busy = time.perf_counter() - t0
        self.busy_s += busy
        self.total_ms.add(busy * 1e3)
        self.rate.tick()
        self.power.add_frames(1)

    def _camera_loop(self) -> None:
        assert self.camera_loop is not None
        self.camera_loop.run(self._share_frame)
        if not self._stop.is_set():
            log.info("local camera source ended")

    def _share_frame(self, frame_id: int, feed: CameraFeed, msg: FrameMessage, frame: Frame) -> None:
        """An admitted frame of its own camera: to the fleet, and into its own queue (it receives it now)."""
        self.link.publish(self.topics.frames, encode_frame(msg, feed.encoding))
        self.slot.put(_Pending(msg, time.time_ns()))

    def stats(self) -> AgentStats:
        recent, recent_frames, recent_busy = self.own_rate.mark(
            time.monotonic(),
            self.rate.total,
            self.busy_s,
            tuple(sorted(self.hosted)),
            time.process_time(),
            cpu_limit_cores(),
        )
        state = read_or_none(self.throttle)
        throttle = None if state is None else with_measured(state, recent, self.own_rate.best())
        return AgentStats(
            board=self.board,
            part=self.part,
            parts=sorted(self.hosted),
            plan_id=self.plan_id,
            failed_parts={str(p): r for p, r in self.failed_parts.items()},
            part_mem_mb={str(p): m for p, m in self.part_mem_mb.items()},
            ts=time.time(),
            fps=round(self.rate.rate(), 2),
            frames=self.rate.total,
            **self.infer_ms.summary("infer"),
            **self.total_ms.summary("total"),
            own_fps=self.own_fps(),
            slowdown=self.emulation.slowdown,
            recent_own_fps=recent,
            recent_frames=recent_frames,
            recent_busy=recent_busy,
            throttle=throttle,
            drops=self.slot.drops,
            malformed=self.malformed.total,
            errors=self.errors,
            callback_errors=self.link.callback_errors,
            connects=self.link.connects,
            **self.proc.snapshot(),
        )

    def own_fps(self) -> float | None:
        """Frames per second this board could compute if it were never idle."""
        return None if self.busy_s <= 0 else round(self.rate.total / self.busy_s, 3)

    def _stats_loop(self) -> None:
        next_stats = time.monotonic() + self.stats_interval
        tick = min(self.stats_interval, 1.0) if self.power.sampler else self.stats_interval  # power: every second
        while not self._stop.wait(tick):
            payload = self.power.payload()
            if payload is not None:
                self.link.publish(self.topics.power(self.board), payload)
            if time.monotonic() >= next_stats:
                next_stats += self.stats_interval
                self._publish_stats()

    def _publish_stats(self) -> None:
        self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def warm_up(self, runs: int = 3) -> None:
        """A cold engine's first calls are slow (allocation, kernel selection): pay that before going online
        (or before a part taken over from a lost board goes live), or the first frames miss the deadline."""
        for engine in self.hosted.values():
            self._warm(engine, runs)

    def _warm(self, engine: PartEngine, runs: int = 3) -> None:
        assert self.pre is not None, "a board with parts has its manifest's preprocessing"
        blank = np.zeros((self.pre.size + 1, self.pre.size + 1, 3), np.uint8)  # exercises prepare()'s resize too
        for _ in range(runs):
            engine.infer(self.pre.normalize(self.pre.prepare(blank)))

    def start(self, connect_timeout: float = 10.0) -> BoardAgent:
        self.warm_up()
        self.link.start(wait=connect_timeout)
        targets = [self._infer_loop, self._stats_loop] + ([self._camera_loop] if self._camera is not None else [])
        if self.loader is not None:
            targets.append(self._plan_loop)
        for target in targets:
            t = threading.Thread(target=target, name=f"agent-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info(
            "agent %s running parts %s (feature dims %s)",
            self.board,
            sorted(self.hosted),
            [e.feature_dim for e in self.hosted.values()],
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self.power.stop()
        if self._camera is not None and self.camera_loop is not None:
            self.camera_loop.join()
            self._camera.source.close()
        # A last stats message, so a short run (fewer frames than one stats interval) still reports this board.
        self.link.publish_and_wait(self.topics.stats(self.board), self.stats().to_json())
        self.link.stop(final=Will(self.topics.available(self.board), OFFLINE))

    def wait(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            pass
