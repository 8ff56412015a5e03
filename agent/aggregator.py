"""The aggregator: feature messages per frame id -> fusion -> prediction JSON + durable log.

A frame is fused as soon as all K parts arrived, or at its deadline with the missing
parts masked (the fusion head was trained with part dropout) and the prediction
flagged `degraded`. Pending frames are bounded (the oldest is fused early when full);
features for an already-fused frame are dropped and counted as late. A frame is known by its camera and its id
(several cameras feed one fleet); its prediction goes to predictions/<camera name>.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vitfleet.agent.deadline import DeadlinePolicy
from vitfleet.agent.fleet_power import FleetPower
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink, Will
from vitfleet.agent.prediction_log import PredictionLog
from vitfleet.agent.protocol import NO_LABEL, FeatureMessage, ProtocolError, decode_features
from vitfleet.agent.rolling import RateMeter, RollingLatency
from vitfleet.fleet_config import DEFAULT_CAMERA, BrokerConfig
from vitfleet.prediction_message import PartTiming, Prediction
from vitfleet.stats_message import AggregatorStats
from vitfleet.topics import OFFLINE, ONLINE, Availability, Topics

log = logging.getLogger("vitfleet.aggregator")


class FusionEngine(Protocol):
    def fuse(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


FrameKey = tuple[int, int]  # (camera index, frame id)


@dataclass
class PendingFrame:
    frame_id: int
    camera: int
    capture_ns: int
    label: int
    first_mono: float
    deadline_mono: float
    parts: dict[int, tuple[FeatureMessage, int]] = field(default_factory=dict)  # part -> (message, arrival ns)
    evicted: bool = False  # fused early because too many frames were pending, not because a part ran late


@dataclass
class AggregatorOptions:
    """How the aggregator fuses and reports (fleet.yaml `aggregator:` and the command line)."""

    prediction_log: PredictionLog | None = None
    deadline: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    max_pending: int = 256  # frames waiting for parts; beyond it the oldest is fused early
    stats_interval: float = 2.0
    camera_names: list[str] = field(default_factory=lambda: [DEFAULT_CAMERA])  # by index: fleet.camera_names()


class Aggregator:
    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        board: str,
        fusion: FusionEngine,
        feature_dims: list[int],
        class_names: list[str],
        options: AggregatorOptions | None = None,
    ) -> None:
        opts = options or AggregatorOptions()
        self.topics = Topics(fleet_name)
        self.board = board
        self.fusion = fusion
        self.feature_dims = list(feature_dims)
        self.offsets = np.concatenate([[0], np.cumsum(self.feature_dims)]).astype(int)
        self.k = len(self.feature_dims)
        self.class_names = class_names
        self.camera_names = list(opts.camera_names)
        self.log = opts.prediction_log
        self.deadline = opts.deadline
        self.max_pending = opts.max_pending
        self.stats_interval = opts.stats_interval
        self.pending: OrderedDict[FrameKey, PendingFrame] = OrderedDict()
        # recently fused frames -> their deadline (monotonic), to recognise late parts
        self.fused_ids: OrderedDict[FrameKey, float] = OrderedDict()
        self._ready: deque[PendingFrame] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.malformed = MalformedCounter(log)
        self.hop_ms = RollingLatency(5000)  # agent publish -> aggregator receive
        self.fusion_ms = RollingLatency(2000)
        self.rate = RateMeter()
        self.counts = {"predictions": 0, "degraded": 0, "late": 0, "evicted": 0, "duplicate": 0}
        self.power = FleetPower()
        self.board_status: dict[str, str] = {}
        # A part missing from this many fused frames in a row is absent: frames are fused without waiting for it.
        self.absent_after = 3
        self.missed: list[int] = [0] * self.k
        self.subscribers: list[Any] = []  # in-process listeners (tests, dashboard): fn(prediction dict)
        # Extra stats sections (the coordinator's plan figures): each fn() -> dict merged into the stats.
        self.stats_sources: list[Any] = []
        subs = [
            (self.topics.all_features, 0),
            (self.topics.all_boards("power"), 0),
            (self.topics.all_boards("available"), 1),
        ]
        self.link = MqttLink(
            broker,
            fleet_name,
            "aggregator",
            board,
            self._on_message,
            subs,
            will=Will(self.topics.available(board), OFFLINE),
            online=Will(self.topics.available(board), ONLINE),
        )
        self._threads: list[threading.Thread] = []

    # ---- network thread ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        arrival_ns = time.time_ns()
        part = self.topics.part_of(topic)
        if part is not None:
            self._on_features(topic, part, payload, arrival_ns)
            return
        where = self.topics.board_of(topic)
        if where is None:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        board, leaf = where
        if leaf == "available":
            status = Availability.parse(payload)
            if status is None:
                self.malformed.record(topic, "availability", bytes(payload[:40]).decode("utf-8", "replace"))
                return
            self.board_status[board] = status.value
        elif leaf == "power":
            try:
                snap = self.power.update(board, payload, self.counts["predictions"])
            except ValueError as exc:  # PowerMessageError
                self.malformed.record(topic, "power", str(exc))
                return
            if self.log is not None:
                self.log.add_power(board, arrival_ns, snap.model_dump())
        else:
            self.malformed.record(topic, "topic", "unexpected board topic")

    def _on_features(self, topic: str, part: int, payload: bytes, arrival_ns: int) -> None:
        if part >= self.k:
            self.malformed.record(topic, "part", f"part {part} but the bundle has {self.k} parts")
            return
        try:
            msg = decode_features(payload, expected_dim=self.feature_dims[part])
        except ProtocolError as exc:
            self.malformed.record(topic, exc.reason, str(exc))
            return
        if msg.part != part:
            self.malformed.record(topic, "part", f"message says part {msg.part} on the topic of part {part}")
            return
        self.hop_ms.add((arrival_ns - msg.sent_ns) / 1e6)
        now = time.monotonic()
        key = (msg.camera, msg.frame_id)
        with self._cond:
            if key in self.fused_ids:
                self.counts["late"] += 1
                if now < self.fused_ids[key]:
                    # Before the deadline: the frame was fused without waiting because this part was absent, but
                    # the part delivers again (e.g. a survivor took it over and runs it after its own part).
                    # Count it present, or every later frame would again be fused without it.
                    self.missed[part] = 0
                return
            frame = self.pending.get(key)
            if frame is None:
                frame = PendingFrame(
                    msg.frame_id, msg.camera, msg.capture_ns, msg.label, now, now + self.deadline.deadline_ms / 1e3
                )
                self.pending[key] = frame
                if len(self.pending) > self.max_pending:
                    _, oldest = self.pending.popitem(last=False)
                    oldest.evicted = True
                    self.counts["evicted"] += 1
                    self._to_fusion(oldest)
            if part in frame.parts:
                self.counts["duplicate"] += 1
                return
            frame.parts[part] = (msg, arrival_ns)
            self.missed[part] = 0
            if len(frame.parts) == self.k:
                del self.pending[key]
                arrivals = [a for _, a in frame.parts.values()]
                self.deadline.observe_complete((max(arrivals) - min(arrivals)) / 1e6)
                self._to_fusion(frame)
            elif all(p in frame.parts for p in self._live_parts()):
                # Every part still delivering is here: waiting out the deadline for a silent board would only
                # slow the fleet down (admission returns a credit per answer), the answer is degraded either way.
                del self.pending[key]
                self._to_fusion(frame)
            self._cond.notify()

    def _to_fusion(self, frame: PendingFrame) -> None:
        """Hand a frame to the fusion thread (lock held). Remembered as fused right away: a part arriving before
        the fusion thread runs (a slow part, or a moved part's two hosts during a plan change) is late, and must
        not open a second pending frame that would be answered twice."""
        self._remember_fused(frame)
        self._ready.append(frame)

    def _live_parts(self) -> list[int]:
        """Parts not absent: a part missing from `absent_after` fused frames in a row is absent until it delivers
        again. Counted in frames, not seconds, so an idle fleet never looks dead."""
        return [p for p in range(self.k) if self.missed[p] < self.absent_after]

    # ---- fusion thread ----------------------------------------------------------------------------------
    def _fusion_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._ready:
                    now = time.monotonic()
                    wait = 0.2
                    if self.pending:
                        soonest = min(f.deadline_mono for f in self.pending.values())
                        wait = min(wait, max(0.0, soonest - now))
                    self._cond.wait(wait)
                now = time.monotonic()
                # A full scan: the adaptive deadline may shrink, so expiry is not always a prefix (max_pending
                # bounds the cost).
                expired = [fid for fid, f in self.pending.items() if f.deadline_mono <= now]
                for fid in expired:
                    self._ready.append(self.pending.pop(fid))
                batch = list(self._ready)
                self._ready.clear()
                for frame in batch:
                    self._remember_fused(frame)
                    if not frame.evicted:  # only a part that had its whole deadline and missed it counts
                        for p in range(self.k):
                            self.missed[p] = 0 if p in frame.parts else self.missed[p] + 1
            for frame in batch:
                try:
                    self._fuse_and_publish(frame)
                except Exception:  # noqa: BLE001 - keep fusing the next frames
                    log.exception("fusion failed for frame %d", frame.frame_id)

    def _remember_fused(self, frame: PendingFrame) -> None:
        self.fused_ids[(frame.camera, frame.frame_id)] = frame.deadline_mono
        while len(self.fused_ids) > 8 * self.max_pending:
            self.fused_ids.popitem(last=False)

    def _fuse_and_publish(self, frame: PendingFrame) -> None:
        features = np.zeros((1, int(self.offsets[-1])), dtype=np.float32)
        mask = np.zeros((1, self.k), dtype=np.float32)
        for part, (msg, _) in frame.parts.items():
            features[0, self.offsets[part] : self.offsets[part + 1]] = msg.features.astype(np.float32)
            mask[0, part] = 1.0
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        logits = np.asarray(self.fusion.fuse(features, mask), dtype=np.float64).reshape(-1)
        fusion_ms = (time.perf_counter() - t0) * 1e3
        self.fusion_ms.add(fusion_ms)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        class_id = int(np.argmax(logits))
        missing = [p for p in range(self.k) if p not in frame.parts]
        last_arrival = max(a for _, a in frame.parts.values())
        camera = self.camera_name(frame.camera)
        prediction = Prediction(
            frame_id=frame.frame_id,
            camera=camera,
            capture_ns=frame.capture_ns,
            class_id=class_id,
            class_name=self.class_names[class_id] if class_id < len(self.class_names) else str(class_id),
            score=round(float(probs[class_id]), 5),
            label=None if frame.label == NO_LABEL else frame.label,
            degraded=bool(missing),
            missing_parts=missing,
            parts=[self._part_timing(part, msg, arrival) for part, (msg, arrival) in sorted(frame.parts.items())],
            wait_ms=round((started_ns - last_arrival) / 1e6, 4),
            fusion_ms=round(fusion_ms, 4),
            fused_ns=time.time_ns(),
        ).model_dump()
        self.link.publish(self.topics.predictions(camera), json.dumps(prediction), qos=1)
        self.counts["predictions"] += 1
        self.counts["degraded"] += int(bool(missing))
        self.rate.tick()
        if self.log is not None:
            self.log.add_prediction(prediction)
        for fn in self.subscribers:
            fn(prediction)

    def camera_name(self, index: int) -> str:
        """The fleet's name for a camera index; a camera the fleet file does not list is named by its index."""
        return self.camera_names[index] if index < len(self.camera_names) else f"camera{index}"

    @staticmethod
    def _part_timing(part: int, msg: FeatureMessage, arrival_ns: int) -> PartTiming:
        return PartTiming(
            part=part,
            frame_hop_ms=round((msg.recv_ns - msg.capture_ns) / 1e6, 4),
            agent_ms=round((msg.sent_ns - msg.recv_ns) / 1e6, 4),
            infer_ms=round(msg.infer_us / 1e3, 4),
            feature_hop_ms=round((arrival_ns - msg.sent_ns) / 1e6, 4),
            arrival_ms=round((arrival_ns - msg.capture_ns) / 1e6, 4),
        )

    # ---- lifecycle & stats ------------------------------------------------------------------------------
    def stats(self) -> AggregatorStats:
        with self._cond:
            pending = len(self.pending)
        fps = self.rate.rate()
        return AggregatorStats(
            board=self.board,
            ts=time.time(),
            fps=round(fps, 2),
            **self.counts,
            pending=pending,
            malformed=self.malformed.total,
            callback_errors=self.link.callback_errors,
            **self.hop_ms.summary("hop"),
            **self.fusion_ms.summary("fusion"),
            deadline_ms=round(self.deadline.deadline_ms, 2),
            deadline_source=self.deadline.source,
            boards=dict(self.board_status),
            **self.power.summary(self.counts["predictions"]),
            log_dropped=self.log.dropped if self.log else 0,
            **{k: v for fn in self.stats_sources for k, v in fn().items()},
        )

    def _log_fleet_power(self) -> None:
        fused = self.counts["predictions"]
        report = self.power.report(fused)
        if self.log is not None and report is not None:
            self.log.add_fleet_power(time.time_ns(), report.to_dict(), fused)

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.stats_interval):
            self._log_fleet_power()
            self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def start(self, connect_timeout: float = 10.0) -> Aggregator:
        # Warm the fusion engine up (first calls are slow) before announcing this process online.
        for _ in range(3):
            self.fusion.fuse(np.zeros((1, int(self.offsets[-1])), np.float32), np.ones((1, self.k), np.float32))
        self.link.start(wait=connect_timeout)
        for target in (self._fusion_loop, self._stats_loop):
            t = threading.Thread(target=target, name=f"aggregator-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=2.0)
        # Last stats (hop, fusion, power per frame), so a run shorter than one stats interval still reports them.
        self._log_fleet_power()
        self.link.publish_and_wait(self.topics.stats(self.board), self.stats().to_json())
        self.link.stop(final=Will(self.topics.available(self.board), OFFLINE))
        if self.log is not None:
            self.log.close()
