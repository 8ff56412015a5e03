"""The camera node: publish frames at a set rate, read predictions back, measure on its own clock.

Each frame carries an id and the capture time (time.time_ns()). When the prediction
for it comes back, end-to-end latency is now - capture on this same clock, and the
prediction's part timings give the breakdown. With labelled sources (dataset://) it
keeps running accuracy. `max_in_flight` > 0 waits for predictions before sending more
(lockstep replays: no frame is dropped anywhere, for accuracy measurements).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from agent.malformed import MalformedCounter
from agent.mqtt_client import MqttLink, Will
from agent.protocol import NO_LABEL, FrameMessage, encode_frame
from agent.rolling import RateMeter, RollingLatency
from agent.topics import Topics
from camera.sources import FramePacer, FrameSource
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.camera")

BREAKDOWN = ("frame_hop_ms", "queue_ms", "infer_ms", "feature_hop_ms", "wait_ms", "fusion_ms", "prediction_hop_ms")


@dataclass
class _Sent:
    capture_ns: int
    label: int


def _check_prediction(data: Any) -> str | None:
    """The reason a prediction JSON is unusable, or None."""
    if not isinstance(data, dict):
        return "not an object"
    for key, kind in (("frame_id", int), ("class_id", int), ("capture_ns", int), ("degraded", bool),
                      ("parts", list), ("fusion_ms", (int, float)), ("fused_ns", int)):
        if not isinstance(data.get(key), kind) or (kind is int and isinstance(data.get(key), bool)):
            return f"field {key} missing or not {getattr(kind, '__name__', 'a number')}"
    for p in data["parts"]:
        if not isinstance(p, dict) or not all(isinstance(p.get(k), (int, float)) for k in
                                              ("frame_hop_ms", "agent_ms", "infer_ms", "feature_hop_ms")):
            return "malformed parts entry"
    return None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class CameraNode:
    def __init__(self, broker: BrokerConfig, fleet_name: str, board: str, source: FrameSource, fps: float = 10.0,
                 encoding: str = "raw", max_frames: int | None = None, duration: float | None = None,
                 max_in_flight: int = 0, in_flight_timeout: float = 2.0, drain: float = 2.0,
                 stats_interval: float = 2.0) -> None:
        self.topics = Topics(fleet_name)
        self.board, self.source, self.fps, self.encoding = board, source, fps, encoding
        self.max_frames, self.duration = max_frames, duration
        self.max_in_flight, self.in_flight_timeout, self.drain = max_in_flight, in_flight_timeout, drain
        self.stats_interval = stats_interval
        self.sent: OrderedDict[int, _Sent] = OrderedDict()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.malformed = MalformedCounter(log)
        self.e2e = RollingLatency(100000)
        self.parts_breakdown = {k: RollingLatency(100000) for k in BREAKDOWN}
        self.rate = RateMeter()
        self.frames_sent = 0
        self.counts = {"predictions": 0, "degraded": 0, "unmatched": 0, "timed_out": 0, "labelled": 0,
                       "correct": 0, "labelled_clean": 0, "correct_clean": 0}
        self.latest: dict[str, Any] | None = None
        self.started_at: float | None = None  # monotonic: first frame sent
        self.last_answer_at: float | None = None  # monotonic: latest prediction received
        self.link = MqttLink(broker, fleet_name, "camera", board, self._on_message, [(self.topics.predictions, 1)],
                             will=Will(self.topics.available(board), b"offline"),
                             online=Will(self.topics.available(board), b"online"))

    # ---- predictions back -------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        now_ns = time.time_ns()
        if topic != self.topics.predictions:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        try:
            data = json.loads(bytes(payload))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: deep nesting
            self.malformed.record(topic, "json", str(exc))
            return
        reason = _check_prediction(data)
        if reason is not None:
            self.malformed.record(topic, "prediction", reason)
            return
        with self._cond:
            sent = self.sent.pop(data["frame_id"], None)
            if sent is None:
                self.counts["unmatched"] += 1
                return
            self._cond.notify_all()
        self._record(data, sent, now_ns)

    def _record(self, data: dict[str, Any], sent: _Sent, now_ns: int) -> None:
        self.last_answer_at = time.monotonic()
        self.e2e.add((now_ns - sent.capture_ns) / 1e6)
        self.counts["predictions"] += 1
        self.counts["degraded"] += int(data["degraded"])
        if data["parts"]:
            # The critical path is the part that arrived last.
            slowest = max(data["parts"], key=lambda p: p["frame_hop_ms"] + p["agent_ms"] + p["feature_hop_ms"])
            b = self.parts_breakdown
            b["frame_hop_ms"].add(slowest["frame_hop_ms"])
            b["queue_ms"].add(max(0.0, slowest["agent_ms"] - slowest["infer_ms"]))
            b["infer_ms"].add(slowest["infer_ms"])
            b["feature_hop_ms"].add(slowest["feature_hop_ms"])
            b["wait_ms"].add(float(data.get("wait_ms") or 0.0))
            b["fusion_ms"].add(float(data["fusion_ms"]))
            b["prediction_hop_ms"].add((now_ns - data["fused_ns"]) / 1e6)
        if sent.label != NO_LABEL:
            correct = int(data["class_id"] == sent.label)
            self.counts["labelled"] += 1
            self.counts["correct"] += correct
            if not data["degraded"]:
                self.counts["labelled_clean"] += 1
                self.counts["correct_clean"] += correct
        data["label"] = None if sent.label == NO_LABEL else sent.label
        data["e2e_ms"] = round((now_ns - sent.capture_ns) / 1e6, 3)
        self.latest = data

    # ---- frames out -------------------------------------------------------------------------------------
    def _wait_for_room(self) -> None:
        if self.max_in_flight <= 0:
            return
        with self._cond:
            deadline = time.monotonic() + self.in_flight_timeout
            while len(self.sent) >= self.max_in_flight and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._expire_oldest()
                    deadline = time.monotonic() + self.in_flight_timeout
                    continue
                self._cond.wait(left)

    def _expire_oldest(self) -> None:
        self.sent.popitem(last=False)
        self.counts["timed_out"] += 1

    def run(self) -> dict[str, Any]:
        self.link.start()
        stats_thread = threading.Thread(target=self._stats_loop, name="camera-stats", daemon=True)
        stats_thread.start()
        pacer = FramePacer(self.fps, self._stop)
        # Frame ids start at the start time in µs: unique across camera restarts, so the aggregator's
        # "already fused" memory never mistakes a new frame for a late one.
        next_id = time.time_ns() // 1000
        t_start = self.started_at = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self.frames_sent >= self.max_frames:
                    break
                if self.duration is not None and time.monotonic() - t_start >= self.duration:
                    break
                self._wait_for_room()
                pacer.wait()
                frame = self.source.read()
                if frame is None:
                    break
                label = NO_LABEL if frame.label is None else int(frame.label)
                capture_ns = time.time_ns()
                payload = encode_frame(FrameMessage(next_id, capture_ns, frame.image, label, capture_ns),
                                       self.encoding)
                with self._cond:
                    self.sent[next_id] = _Sent(capture_ns, label)
                    while len(self.sent) > 10000:   # bounded: forget frames whose prediction never came
                        self._expire_oldest()
                self.link.publish(self.topics.frames, payload)
                self.frames_sent += 1
                self.rate.tick()
                next_id += 1
            self._drain()
        finally:
            self.elapsed = time.monotonic() - t_start
            self._stop.set()
            stats_thread.join(timeout=2)
            self.link.stop(final=Will(self.topics.available(self.board), b"offline"))
            self.source.close()
        return self.summary()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.drain
        with self._cond:
            while self.sent and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    # ---- figures ----------------------------------------------------------------------------------------
    def accuracy(self, clean_only: bool = False) -> float | None:
        n = self.counts["labelled_clean" if clean_only else "labelled"]
        return None if n == 0 else self.counts["correct_clean" if clean_only else "correct"] / n

    def stats(self) -> dict[str, Any]:
        acc = self.accuracy()
        return {"board": self.board, "role": "camera", "ts": time.time(), "fps": round(self.rate.rate(), 2),
                "frames_sent": self.frames_sent, **self.counts, "malformed": self.malformed.total,
                "accuracy": None if acc is None else round(acc, 5), **self.e2e.summary("e2e")}

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.stats_interval):
            self.link.publish(self.topics.stats(self.board), json.dumps(self.stats()))

    def _answered_fps(self) -> float | None:
        if self.started_at is None or self.last_answer_at is None or self.last_answer_at <= self.started_at:
            return None
        return round(self.counts["predictions"] / (self.last_answer_at - self.started_at), 2)

    def summary(self) -> dict[str, Any]:
        with self._cond:
            lost = len(self.sent)
        acc, clean = self.accuracy(), self.accuracy(clean_only=True)
        out: dict[str, Any] = {
            "frames_sent": self.frames_sent, **self.counts, "lost": lost, "malformed": self.malformed.total,
            "elapsed_s": round(getattr(self, "elapsed", 0.0), 3),
            # Throughput over the time answers came in: the drain wait for never-answered frames is not work.
            "answered_fps": self._answered_fps(),
            "accuracy": None if acc is None else round(acc, 5),
            "accuracy_not_degraded": None if clean is None else round(clean, 5),
            **self.e2e.summary("e2e"),
            "breakdown_p50_ms": {k: _rounded(v.percentile(50)) for k, v in self.parts_breakdown.items()},
        }
        return out
