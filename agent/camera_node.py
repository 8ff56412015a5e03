"""The camera node: publish frames of one or several cameras, read predictions back, measure on its own clock.

Each frame carries an id, its camera's index and the capture time (time.time_ns()). When the prediction for it
comes back (on predictions/<camera>), end-to-end latency is now - capture on this same clock, and the
prediction's part timings give the breakdown. With labelled sources (dataset://) it keeps running accuracy, per
camera and in total.

Admission (agent/admission.py, run by agent/camera_loop.py as for an agent's own camera): at most
`max_in_flight` frames are out at once, whatever the number of cameras.
Each camera's newest frame waits for a credit; a free credit goes to the camera furthest behind its weighted
share (agent/camera_shares.py), so a 30 fps camera cannot starve a 5 fps one. A paced camera (fps > 0, the live
case) skips a waiting frame when a newer one arrives; fps 0 waits instead (replays that must not skip anything,
e.g. `--accuracy` in lockstep with max_in_flight 1). Skipped frames never reach a board.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from vitfleet.agent.admission import CreditGate
from vitfleet.agent.camera_loop import CameraFeed, CameraLoop, Sent
from vitfleet.agent.camera_shares import fair_shares
from vitfleet.agent.malformed import NOT_JSON, MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink, Will
from vitfleet.agent.protocol import NO_LABEL, FrameMessage, encode_frame
from vitfleet.agent.rolling import RateMeter, RollingLatency
from vitfleet.camera.frame_source import Frame, FrameSource
from vitfleet.fleet_config import DEFAULT_CAMERA, BrokerConfig
from vitfleet.prediction_message import Prediction
from vitfleet.stats_message import CameraFeedStats, CameraStats
from vitfleet.topics import OFFLINE, ONLINE, Topics

log = logging.getLogger("vitfleet.camera")

BREAKDOWN = ("frame_hop_ms", "queue_ms", "infer_ms", "feature_hop_ms", "wait_ms", "fusion_ms", "prediction_hop_ms")


@dataclass
class _Tally:
    """Answers and their figures, for one camera or the whole node."""

    e2e: RollingLatency = field(default_factory=lambda: RollingLatency(100000))
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "predictions": 0,
            "degraded": 0,
            "unmatched": 0,
            "labelled": 0,
            "correct": 0,
            "labelled_clean": 0,
            "correct_clean": 0,
        }
    )

    def add(self, e2e_ms: float, degraded: bool, correct: bool | None) -> None:
        self.e2e.add(e2e_ms)
        self.counts["predictions"] += 1
        self.counts["degraded"] += int(degraded)
        if correct is not None:
            self.counts["labelled"] += 1
            self.counts["correct"] += int(correct)
            if not degraded:
                self.counts["labelled_clean"] += 1
                self.counts["correct_clean"] += int(correct)

    def accuracy(self, clean_only: bool = False) -> float | None:
        n = self.counts["labelled_clean" if clean_only else "labelled"]
        return None if n == 0 else self.counts["correct_clean" if clean_only else "correct"] / n


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class CameraNode:
    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        board: str,
        source: FrameSource | Sequence[CameraFeed],
        fps: float = 10.0,
        encoding: str = "raw",
        max_frames: int | None = None,
        duration: float | None = None,
        max_in_flight: int = 2,
        in_flight_timeout: float = 5.0,
        drain: float = 2.0,
        stats_interval: float = 2.0,
    ) -> None:
        self.topics = Topics(fleet_name)
        self.feeds = (
            list(source)
            if isinstance(source, Sequence)
            else [CameraFeed(DEFAULT_CAMERA, source, fps, 1.0, encoding, 0)]
        )
        if not self.feeds:
            raise ValueError("a camera node needs at least one camera")
        self.board = board
        self.max_frames, self.duration = max_frames, duration
        self.max_in_flight, self.drain = max_in_flight, drain
        self.stats_interval = stats_interval
        self.gate: CreditGate[Sent] = CreditGate(max_in_flight, in_flight_timeout)
        self._lane_of_index = {f.index: lane for lane, f in enumerate(self.feeds)}
        self._lane_of_topic = {self.topics.predictions(f.name): lane for lane, f in enumerate(self.feeds)}
        self.reclaim_max_s = in_flight_timeout
        self.recent_e2e = RollingLatency(500)
        self._stop = threading.Event()
        self.loop = CameraLoop(self.feeds, self.gate, self._stop, self._budget_left)
        self.malformed = MalformedCounter(log)
        self.total = _Tally()
        self.per_camera = [_Tally() for _ in self.feeds]
        self.parts_breakdown = {k: RollingLatency(100000) for k in BREAKDOWN}
        self.rate = RateMeter()
        self.frames_sent = 0
        self.latest: dict[str, Any] | None = None
        self.started_at: float | None = None  # monotonic: first frame sent
        self.last_answer_at: float | None = None  # monotonic: latest prediction received
        self.elapsed = 0.0
        # Told the id of each frame as it is admitted, before it is published (the LoadGen harness pairs its
        # samples with their answers by it).
        self.on_admit: Callable[[int, Frame], None] | None = None
        subs = [(topic, 1) for topic in self._lane_of_topic]
        self.link = MqttLink(
            broker,
            fleet_name,
            "camera",
            board,
            self._on_message,
            subs,
            will=Will(self.topics.available(board), OFFLINE),
            online=Will(self.topics.available(board), ONLINE),
        )

    # The node's totals under the names the single-camera node always had.
    @property
    def counts(self) -> dict[str, int]:
        return self.total.counts

    @property
    def e2e(self) -> RollingLatency:
        return self.total.e2e

    @property
    def source(self) -> FrameSource:
        return self.feeds[0].source

    @property
    def fps(self) -> float:
        return self.feeds[0].fps

    # ---- predictions back -------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        now_ns = time.time_ns()
        lane = self._lane_of_topic.get(topic)
        if lane is None:
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
        if data["camera"] != self.feeds[lane].name:
            self.malformed.record(topic, "camera", f"a prediction of camera {data['camera']!r} on this topic")
            return
        sent = self.gate.answer(data["frame_id"])
        if sent is None:
            self.total.counts["unmatched"] += 1
            self.per_camera[lane].counts["unmatched"] += 1
            return
        self._record(data, sent, now_ns)

    def _record(self, data: dict[str, Any], sent: Sent, now_ns: int) -> None:
        self.last_answer_at = time.monotonic()
        e2e_ms = (now_ns - sent.capture_ns) / 1e6
        correct = None if sent.label == NO_LABEL else data["class_id"] == sent.label
        self.total.add(e2e_ms, data["degraded"], correct)
        self.per_camera[self._lane_of_index.get(sent.camera, 0)].add(e2e_ms, data["degraded"], correct)
        self.recent_e2e.add(e2e_ms)
        if self.total.counts["predictions"] % 10 == 0:
            self._adapt_reclaim()
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
        data["label"] = None if sent.label == NO_LABEL else sent.label
        data["e2e_ms"] = round(e2e_ms, 3)
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
    def _budget_left(self) -> bool:
        if self.max_frames is not None and self.frames_sent >= self.max_frames:
            return False
        return self.duration is None or self.started_at is None or time.monotonic() - self.started_at < self.duration

    def run(self) -> dict[str, Any]:
        self.link.start()
        stats_thread = threading.Thread(target=self._stats_loop, name="camera-stats", daemon=True)
        stats_thread.start()
        t_start = self.started_at = time.monotonic()
        try:
            self.loop.run(self._publish)
            self._drain()
        finally:
            self.elapsed = time.monotonic() - t_start
            self._stop.set()
            self.loop.join()
            stats_thread.join(timeout=2)
            self.link.stop(final=Will(self.topics.available(self.board), OFFLINE))
            for feed in self.feeds:
                feed.source.close()
        return self.summary()

    def _publish(self, frame_id: int, feed: CameraFeed, msg: FrameMessage, frame: Frame) -> None:
        if self.on_admit is not None:
            self.on_admit(frame_id, frame)
        self.link.publish(self.topics.frames, encode_frame(msg, feed.encoding))
        self.frames_sent += 1
        self.rate.tick()

    def _drain(self) -> None:
        self.gate.wait_empty(self.drain)
        # What is still out after the drain will not be waited for: lost now, so the last stats say so too.
        self.gate.give_up()
        self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def stop(self) -> None:
        self._stop.set()
        self.loop.wake()

    # ---- figures ----------------------------------------------------------------------------------------
    def accuracy(self, clean_only: bool = False) -> float | None:
        return self.total.accuracy(clean_only)

    def _feed_stats(self, lane: int) -> CameraFeedStats:
        feed, tally = self.feeds[lane], self.per_camera[lane]
        gate = self.gate.lane_counts(lane)
        acc = tally.accuracy()
        return CameraFeedStats(
            index=feed.index,
            weight=feed.weight,
            offered=gate.offered,
            admitted=gate.admitted,
            skipped=gate.skipped,
            lost=gate.lost,
            answered_late=gate.answered_late,
            predictions=tally.counts["predictions"],
            degraded=tally.counts["degraded"],
            accuracy=None if acc is None else round(acc, 5),
            **tally.e2e.summary("e2e"),
        )

    def stats(self) -> CameraStats:
        acc = self.accuracy()
        gate = self.gate.counts
        return CameraStats(
            board=self.board,
            ts=time.time(),
            fps=round(self.rate.rate(), 2),
            frames_sent=self.frames_sent,
            offered=gate.offered,
            admitted=gate.admitted,
            skipped=gate.skipped,
            lost=gate.lost,
            answered_late=gate.answered_late,
            **self.counts,
            malformed=self.malformed.total,
            accuracy=None if acc is None else round(acc, 5),
            reconnects=sum(f.source.reconnects for f in self.feeds),
            cameras={f.name: self._feed_stats(lane) for lane, f in enumerate(self.feeds)},
            **self.e2e.summary("e2e"),
        )

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.stats_interval):
            self.link.publish(self.topics.stats(self.board), self.stats().to_json())

    def _rate_over_answers(self, count: int) -> float | None:
        if self.started_at is None or self.last_answer_at is None or self.last_answer_at <= self.started_at:
            return None
        return round(count / (self.last_answer_at - self.started_at), 2)

    def _per_camera_summary(self) -> dict[str, dict[str, Any]]:
        """Each camera's counts and figures, and the weighted fair share of the fleet's rate it was due."""
        span = self.elapsed or (time.monotonic() - self.started_at if self.started_at else 0.0)
        lanes = [self.gate.lane_counts(lane) for lane in range(len(self.feeds))]
        offered = [c.offered / span if span > 0 else 0.0 for c in lanes]
        admitted = [c.admitted / span if span > 0 else 0.0 for c in lanes]
        due = fair_shares(sum(admitted), offered, [f.weight for f in self.feeds])
        out: dict[str, dict[str, Any]] = {}
        for lane, feed in enumerate(self.feeds):
            tally, c = self.per_camera[lane], lanes[lane]
            acc = tally.accuracy()
            out[feed.name] = {
                "index": feed.index,
                "uri": feed.uri,
                "camera_fps": feed.fps if feed.fps > 0 else None,
                "weight": feed.weight,
                **c.as_dict(),
                "lost": c.lost + self.gate.in_flight_of(lane),
                "predictions": tally.counts["predictions"],
                "degraded": tally.counts["degraded"],
                "accuracy": None if acc is None else round(acc, 5),
                **tally.e2e.summary("e2e"),
                "offered_fps": round(offered[lane], 3),
                "admitted_fps": round(admitted[lane], 3),
                # the weighted max-min fair share of what the fleet admitted in all, and the part of it this got
                "share_fps": round(due[lane], 3),
                "of_share": None if due[lane] <= 0 else round(admitted[lane] / due[lane], 4),
                "reconnects": feed.source.reconnects,
            }
        return out

    def summary(self) -> dict[str, Any]:
        gate = self.gate.counts
        # Lost = admitted, no answer within the reclaim timeout (or still out when the run ended); an answer that
        # came after that is answered_late, and the frame stays lost (agent/admission.py says why). So
        # admitted = predictions + lost - answered_late once the run has ended.
        lost = gate.lost + self.gate.in_flight
        acc, clean = self.accuracy(), self.accuracy(clean_only=True)
        whole = self.counts["predictions"] - self.counts["degraded"]
        first = self.feeds[0]
        out: dict[str, Any] = {
            # ok: nothing admitted was lost (degraded answers are judged by who knows about board losses: the demo)
            "ok": lost == 0,
            "frames_sent": self.frames_sent,
            **self.counts,
            "lost": lost,
            "malformed": self.malformed.total,
            "offered": gate.offered,
            "admitted": gate.admitted,
            "skipped": gate.skipped,
            "answered_late": gate.answered_late,
            "max_in_flight": self.max_in_flight,
            "camera_fps": first.fps if first.fps > 0 else None,
            "whole": whole,
            "whole_of_admitted": None if gate.admitted == 0 else round(whole / gate.admitted, 5),
            "elapsed_s": round(self.elapsed, 3),
            # Throughput over the time answers came in: the drain wait for never-answered frames is not work.
            "answered_fps": self._rate_over_answers(self.counts["predictions"]),
            "whole_fps": self._rate_over_answers(whole),  # goodput: answers with every part in them
            "accuracy": None if acc is None else round(acc, 5),
            "accuracy_not_degraded": None if clean is None else round(clean, 5),
            **self.e2e.summary("e2e"),
            "breakdown_p50_ms": {k: _rounded(v.percentile(50)) for k, v in self.parts_breakdown.items()},
            # the first camera's measured fps and size, where capture times came from, and its reconnects
            "source": {**first.source.describe().as_dict(), "reconnects": first.source.reconnects},
            "cameras": self._per_camera_summary(),
        }
        return out
