"""The camera node: publish frames at a set rate, read predictions back, measure on its own clock.

Each frame carries an id and the capture time (time.time_ns()). When the prediction
for it comes back, end-to-end latency is now - capture on this same clock, and the
prediction's part timings give the breakdown. With labelled sources (dataset://) it
keeps running accuracy.

Admission (agent/admission.py): at most `max_in_flight` frames are out at once. A paced camera (fps > 0,
the live case) skips the frames that find no free credit; fps 0 waits for one instead (replays that must
not skip anything, e.g. `--accuracy` in lockstep with max_in_flight 1). Skipped frames never reach a board.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vitfleet.agent.admission import CreditGate
from vitfleet.agent.malformed import NOT_JSON, MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink, Will
from vitfleet.prediction_message import Prediction
from vitfleet.agent.protocol import NO_LABEL, FrameMessage, encode_frame
from vitfleet.agent.rolling import RateMeter, RollingLatency
from vitfleet.stats_message import CameraStats
from vitfleet.topics import OFFLINE, ONLINE, Topics
from vitfleet.camera.sources import FramePacer, FrameSource
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.camera")

BREAKDOWN = ("frame_hop_ms", "queue_ms", "infer_ms", "feature_hop_ms", "wait_ms", "fusion_ms", "prediction_hop_ms")


@dataclass
class _Sent:
    capture_ns: int
    label: int


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class CameraNode:
    def __init__(self, broker: BrokerConfig, fleet_name: str, board: str, source: FrameSource, fps: float = 10.0,
                 encoding: str = "raw", max_frames: int | None = None, duration: float | None = None,
                 max_in_flight: int = 2, in_flight_timeout: float = 5.0, drain: float = 2.0,
                 stats_interval: float = 2.0) -> None:
        self.topics = Topics(fleet_name)
        self.board, self.source, self.fps, self.encoding = board, source, fps, encoding
        self.max_frames, self.duration = max_frames, duration
        self.max_in_flight, self.drain = max_in_flight, drain
        self.stats_interval = stats_interval
        self.gate: CreditGate[_Sent] = CreditGate(max_in_flight, in_flight_timeout)
        self.reclaim_max_s = in_flight_timeout
        self.recent_e2e = RollingLatency(500)
        self._stop = threading.Event()
        self.malformed = MalformedCounter(log)
        self.e2e = RollingLatency(100000)
        self.parts_breakdown = {k: RollingLatency(100000) for k in BREAKDOWN}
        self.rate = RateMeter()
        self.frames_sent = 0
        self.counts = {"predictions": 0, "degraded": 0, "unmatched": 0, "labelled": 0,
                       "correct": 0, "labelled_clean": 0, "correct_clean": 0}
        self.latest: dict[str, Any] | None = None
        self.started_at: float | None = None  # monotonic: first frame sent
        self.last_answer_at: float | None = None  # monotonic: latest prediction received
        self.elapsed = 0.0
        self.link = MqttLink(broker, fleet_name, "camera", board, self._on_message, [(self.topics.predictions, 1)],
                             will=Will(self.topics.available(board), OFFLINE),
                             online=Will(self.topics.available(board), ONLINE))

    # ---- predictions back -------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        now_ns = time.time_ns()
        if topic != self.topics.predictions:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        data = self.malformed.parse_json(topic, payload)
        if data is NOT_JSON:
            return
        try:
            data = Prediction.model_validate(data).model_dump()
        except ValidationError as exc:
            self.malformed.record(topic, "prediction", str(exc).splitlines()[0])
            return
        sent = self.gate.answer(data["frame_id"])
        if sent is None:
            self.counts["unmatched"] += 1
            return
        self._record(data, sent, now_ns)

    def _record(self, data: dict[str, Any], sent: _Sent, now_ns: int) -> None:
        self.last_answer_at = time.monotonic()
        self.e2e.add((now_ns - sent.capture_ns) / 1e6)
        self.counts["predictions"] += 1
        self.recent_e2e.add((now_ns - sent.capture_ns) / 1e6)
        if self.counts["predictions"] % 10 == 0:
            self._adapt_reclaim()
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

    def _adapt_reclaim(self) -> None:
        """A credit whose answer never comes (lost with a restarting broker) blocks admission until reclaimed:
        reclaim after 3x the measured end-to-end p99 (at least 2 s: beyond the aggregator's 1 s deadline
        ceiling plus a loaded machine's stalls; at most the configured timeout), not a fixed worst case, so the
        fleet resumes within a few seconds."""
        p99 = self.recent_e2e.percentile(99)
        if p99 is not None:
            self.gate.timeout = min(self.reclaim_max_s, max(2.0, 3.0 * p99 / 1e3))

    # ---- frames out -------------------------------------------------------------------------------------
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
                pacer.wait()
                frame = self.source.read()
                if frame is None:
                    break
                label = NO_LABEL if frame.label is None else int(frame.label)
                read_ns = time.time_ns()
                # A stream's own capture time (camera/stream_clock.py) where it has one, so e2e includes the stream.
                sent = _Sent(read_ns if frame.capture_ns is None else frame.capture_ns, label)
                if self.fps <= 0:
                    if not self.gate.wait_admit(next_id, sent, self._stop):
                        break
                    # An unpaced source is read when the fleet can take the frame: stamp it then, or every
                    # end-to-end figure would include the wait for the previous frame's credit.
                    read_ns = time.time_ns()   # published now: the hop starts after the wait
                    if frame.capture_ns is None:
                        sent.capture_ns = read_ns
                elif not self.gate.try_admit(next_id, sent):
                    continue   # skipped: no board computes it
                capture_ns = sent.capture_ns
                payload = encode_frame(FrameMessage(next_id, capture_ns, frame.image, label, read_ns),
                                       self.encoding)
                self.link.publish(self.topics.frames, payload)
                self.frames_sent += 1
                self.rate.tick()
                next_id += 1
            self._drain()
        finally:
            self.elapsed = time.monotonic() - t_start
            self._stop.set()
            stats_thread.join(timeout=2)
            self.link.stop(final=Will(self.topics.available(self.board), OFFLINE))
            self.source.close()
        return self.summary()

    def _drain(self) -> None:
        self.gate.wait_empty(self.drain)
        # What is still out after the drain will not be waited for: lost now, so the last stats say so too.
        self.gate.give_up()
        self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def stop(self) -> None:
        self._stop.set()
        self.gate.wake()

    # ---- figures ----------------------------------------------------------------------------------------
    def accuracy(self, clean_only: bool = False) -> float | None:
        n = self.counts["labelled_clean" if clean_only else "labelled"]
        return None if n == 0 else self.counts["correct_clean" if clean_only else "correct"] / n

    def stats(self) -> CameraStats:
        acc = self.accuracy()
        gate = self.gate.counts
        return CameraStats(board=self.board, ts=time.time(), fps=round(self.rate.rate(), 2),
                           frames_sent=self.frames_sent, offered=gate.offered, admitted=gate.admitted,
                           skipped=gate.skipped, lost=gate.lost, answered_late=gate.answered_late, **self.counts,
                           malformed=self.malformed.total, accuracy=None if acc is None else round(acc, 5),
                           reconnects=self.source.reconnects,
                           **self.e2e.summary("e2e"))

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.stats_interval):
            self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def _answered_fps(self, answers: int) -> float | None:
        if self.started_at is None or self.last_answer_at is None or self.last_answer_at <= self.started_at:
            return None
        return round(answers / (self.last_answer_at - self.started_at), 2)

    def summary(self) -> dict[str, Any]:
        gate = self.gate.counts
        # Lost = admitted, no answer within the reclaim timeout (or still out when the run ended); an answer that
        # came after that is answered_late, and the frame stays lost (agent/admission.py says why). So
        # admitted = predictions + lost - answered_late once the run has ended.
        lost = gate.lost + self.gate.in_flight
        acc, clean = self.accuracy(), self.accuracy(clean_only=True)
        whole = self.counts["predictions"] - self.counts["degraded"]
        out: dict[str, Any] = {
            # ok: nothing admitted was lost (degraded answers are judged by who knows about board losses: the demo)
            "ok": lost == 0,
            "frames_sent": self.frames_sent, **self.counts, "lost": lost, "malformed": self.malformed.total,
            "offered": gate.offered, "admitted": gate.admitted, "skipped": gate.skipped,
            "answered_late": gate.answered_late,
            "max_in_flight": self.max_in_flight, "camera_fps": self.fps if self.fps > 0 else None,
            "whole": whole,
            "whole_of_admitted": None if gate.admitted == 0 else round(whole / gate.admitted, 5),
            "elapsed_s": round(self.elapsed, 3),
            # Throughput over the time answers came in: the drain wait for never-answered frames is not work.
            "answered_fps": self._answered_fps(self.counts["predictions"]),
            "whole_fps": self._answered_fps(whole),   # goodput: answers with every part in them
            "accuracy": None if acc is None else round(acc, 5),
            "accuracy_not_degraded": None if clean is None else round(clean, 5),
            **self.e2e.summary("e2e"),
            "breakdown_p50_ms": {k: _rounded(v.percentile(50)) for k, v in self.parts_breakdown.items()},
            # the source's measured fps and size, where capture times came from, and its reconnects after drops
            "source": {**self.source.describe().as_dict(), "reconnects": self.source.reconnects},
        }
        return out
