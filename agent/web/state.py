"""The fleet's state, gathered by one MQTT subscriber into bounded buffers: the one reader of the fleet's topics,
which the web view, its /metrics and the workstation's terminal dashboard (fleet/dashboard.py) all render.

Each board's availability (retained), stats and power; every prediction (validated against the typed model);
a chart sample per second over the last minutes; the tail of the prediction log; and, only while a browser
watches the stream, the latest frames. Everything is a ring buffer or capped dict: a flood of messages or
board names cannot grow the process.

Several cameras may feed the fleet: each has its latest prediction, its recent frames (by the camera index the
frames carry) and the camera node's per-camera counts. A camera's name for its index comes from the fleet file
when the view was given it, else from the camera node's stats, else from a prediction matched to its frame.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from vitfleet.agent.board_reports import BoardReports
from vitfleet.agent.malformed import NOT_JSON, MalformedCounter
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.protocol import ProtocolError, decode_frame
from vitfleet.fleet_config import CAMERA_NAME, BrokerConfig
from vitfleet.prediction_message import Prediction
from vitfleet.stats_message import AgentStats, AggregatorStats, CameraFeedStats, CameraStats, Stats, first_of, of_role
from vitfleet.topics import Availability, Topics

log = logging.getLogger("vitfleet.web")

CHART_SECONDS = 300  # one sample a second: the last five minutes
LOG_TAIL = 40  # predictions kept for the page's log
MAX_BOARDS = 256  # board names beyond this are ignored (a topic flood must not grow the state)
RECENT_FRAMES = 16  # frames kept per camera to draw the prediction on the frame it is for
MAX_CAMERAS = 64  # camera names (and frame indices) beyond this are ignored, like boards beyond MAX_BOARDS
FRAME_BUDGET = 64  # frames kept over all cameras while streamed (each keeps at least 2): bounded memory
STREAM_PATH = "/stream.mjpg"
POWER_FRESH_S = 5.0  # a board's watts count towards the fleet while its last report is this recent


class BoardTile(BaseModel):
    name: str
    role: str | None = None
    status: Literal["online", "offline", "unknown"] = "unknown"
    last_seen_s: float | None = None  # seconds since its last stats or power message
    part: int | None = None
    fps: float | None = None
    infer_p50_ms: float | None = None
    infer_p99_ms: float | None = None
    drops: int | None = None
    cpu_percent: float | None = None
    rss_mb: float | None = None
    watts: float | None = None
    power_source: str | None = None
    power_estimated: bool | None = None


class PredictionRow(BaseModel):
    frame_id: int
    camera: str | None = None
    class_id: int
    class_name: str
    score: float
    label: int | None
    degraded: bool
    missing_parts: list[int]
    e2e_ms: float  # capture -> this view; one clock when the view runs where the camera does
    at: float  # when the view received it, epoch seconds


class ChartPoint(BaseModel):
    t: float  # epoch seconds, end of the one-second bucket
    e2e_p50_ms: float | None
    e2e_p99_ms: float | None
    fps: float  # predictions answered in this second
    fleet_watts: float | None
    mj_per_frame: float | None


class FleetSummary(BaseModel):
    predictions: int | None = None  # the aggregator's counts
    degraded: int | None = None
    late: int | None = None
    deadline_ms: float | None = None
    hop_p50_ms: float | None = None
    hop_p99_ms: float | None = None
    camera_e2e_p50_ms: float | None = None  # the camera node's own clock (the reference figure)
    camera_e2e_p99_ms: float | None = None
    frames_sent: int | None = None
    skipped: int | None = None
    lost: int | None = None  # admitted, no answer within the reclaim timeout (stays lost)
    answered_late: int | None = None  # of those, answered after all
    accuracy: float | None = None
    fleet_watts: float | None = None
    mj_per_frame: float | None = None
    power_estimated: bool | None = None


class CameraTile(BaseModel):
    """One camera: its latest answer, and its counts as the camera node reports them (None before it has)."""

    name: str
    index: int | None = None  # its id on the wire (its place in the fleet's `cameras`), once known
    stream: str  # its picture: the latest frame with its prediction drawn on it (MJPEG)
    prediction: PredictionRow | None = None
    predictions_seen: int = 0  # its predictions this view received
    weight: float | None = None
    offered: int | None = None
    admitted: int | None = None
    skipped: int | None = None
    lost: int | None = None
    answered_late: int | None = None
    predictions: int | None = None  # answers the camera node matched to its frames
    degraded: int | None = None
    accuracy: float | None = None
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None


class ViewState(BaseModel):
    """The whole page as JSON (`/api/state`)."""

    fleet: str
    broker: str
    broker_connected: bool
    broker_down_s: float | None  # how long the broker has been unreachable
    prediction: PredictionRow | None  # the latest of any camera
    predictions_seen: int
    cameras: list[CameraTile]
    boards: list[BoardTile]
    summary: FleetSummary
    chart: list[ChartPoint]
    log: list[PredictionRow]
    stream_clients: int
    frames_subscribed: bool
    malformed: dict[str, int]
    generated_at: float


def stream_path(camera: str) -> str:
    return f"{STREAM_PATH}?camera={camera}"  # a camera name is [A-Za-z0-9_-]: nothing to escape


def valid_camera_name(name: str) -> bool:
    return re.fullmatch(CAMERA_NAME, name) is not None


@dataclass
class _Camera:
    """What the view keeps of one camera between snapshots."""

    prediction: PredictionRow | None = None
    seen: int = 0
    index: int | None = None  # from the fleet file or a prediction matched to its frame
    version: int = 0  # bumped on each of its predictions: its stream re-renders


@dataclass
class _FrameRing:
    """The recent frames of one camera index, oldest first."""

    frames: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)
    version: int = 0  # bumped on each of its frames


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet at one instant: each board's reports, the latest prediction of any camera, how many were seen."""

    reports: BoardReports
    prediction: PredictionRow | None
    predictions_seen: int


class WebState:
    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        boards: list[str] | None = None,
        on_prediction: Callable[[Prediction, float], None] | None = None,
        cameras: list[str] | None = None,
    ) -> None:
        self.topics = Topics(fleet_name)
        self.fleet_name = fleet_name
        self.broker_label = f"{broker.host}:{broker.port}"
        self.lock = threading.Lock()
        self.frames_changed = threading.Condition(self.lock)
        self.known_boards = list(boards or [])
        self.seen_mono: dict[str, float] = {}
        self.prediction: PredictionRow | None = None
        self.predictions_seen = 0
        self.tail: deque[PredictionRow] = deque(maxlen=LOG_TAIL)
        self.chart: deque[ChartPoint] = deque(maxlen=CHART_SECONDS)
        self._bucket_e2e: list[float] = []
        self._bucket_count = 0
        # The fleet file's cameras, in its order: a camera's place there is its index on the wire.
        self.cameras: dict[str, _Camera] = {n: _Camera(index=i) for i, n in enumerate((cameras or [])[:MAX_CAMERAS])}
        self.frames: dict[int, _FrameRing] = {}  # camera index -> its recent frames, only while streamed
        self.latest_index: int | None = None  # the camera index of the newest frame
        self.frame_version = 0  # bumped on every new frame or prediction: the fleet-wide stream re-renders
        self.stream_clients = 0
        self.on_prediction = on_prediction
        self.malformed = MalformedCounter(log)
        self.reports = BoardReports(self.malformed)
        # the live fields, shared with self.reports: read them under self.lock
        self.available, self.stats, self.power = self.reports.available, self.reports.stats, self.reports.power
        self._down_since: float | None = time.monotonic()
        self.changed = threading.Event()  # set on every message taken (waiters clear it)
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        subs = [
            (self.topics.all_predictions, 0),
            (self.topics.all_boards("available"), 1),
            (self.topics.all_boards("stats"), 0),
            (self.topics.all_boards("power"), 0),
        ]
        self.link = MqttLink(broker, fleet_name, "view", "web", self._on_message, subs)

    # ---- network thread ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        self._take(topic, payload)
        self.changed.set()

    def _take(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.frames:
            self._on_frame(topic, payload)
            return
        if self.topics.camera_of(topic) is not None:
            self._on_prediction(topic, payload)
            return
        where = self.topics.board_of(topic)
        if where is None:
            self.malformed.record(topic, "topic", "unexpected topic")
            return
        board, leaf = where
        with self.lock:
            if board not in self.seen_mono and len(self.seen_mono) >= MAX_BOARDS:
                self.malformed.record(topic, "boards", f"more than {MAX_BOARDS} boards")
                return
        with self.lock:
            if not self.reports.take(topic, board, leaf, payload):
                return
            if leaf == "available":
                self.seen_mono.setdefault(board, 0.0)
            else:
                self.seen_mono[board] = time.monotonic()

    def _on_prediction(self, topic: str, payload: bytes) -> None:
        now_ns = time.time_ns()
        camera = self.topics.camera_of(topic) or ""
        if not valid_camera_name(camera):
            self.malformed.record(topic, "camera", "not a camera name")
            return
        data = self.malformed.parse_json(topic, payload)
        if data is NOT_JSON:
            return
        try:
            pred = Prediction.model_validate(data)
        except ValidationError as exc:
            self.malformed.record(topic, "prediction", str(exc).splitlines()[0])
            return
        if pred.camera != camera:
            self.malformed.record(topic, "camera", f"a prediction of camera {pred.camera!r} on this topic")
            return
        e2e_ms = (now_ns - pred.capture_ns) / 1e6
        row = PredictionRow(
            frame_id=pred.frame_id,
            camera=camera,
            class_id=pred.class_id,
            class_name=pred.class_name,
            score=pred.score,
            label=pred.label,
            degraded=pred.degraded,
            missing_parts=pred.missing_parts,
            e2e_ms=round(e2e_ms, 3),
            at=now_ns / 1e9,
        )
        with self.frames_changed:
            cam = self.cameras.get(camera)
            if cam is None:
                if len(self.cameras) >= MAX_CAMERAS:
                    self.malformed.record(topic, "cameras", f"more than {MAX_CAMERAS} cameras")
                    return
                cam = self.cameras[camera] = _Camera()
            cam.prediction, cam.seen, cam.version = row, cam.seen + 1, cam.version + 1
            if self._index_of(camera) is None:
                cam.index = self._index_by_frame(row.frame_id)
            self.prediction = row
            self.predictions_seen += 1
            self.tail.append(row)
            self._bucket_count += 1
            self._bucket_e2e.append(e2e_ms)
            self.frame_version += 1
            self.frames_changed.notify_all()
        if self.on_prediction is not None:
            self.on_prediction(pred, e2e_ms)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        try:
            msg = decode_frame(payload)
        except ProtocolError as exc:
            self.malformed.record(topic, exc.reason, str(exc))
            return
        with self.frames_changed:
            ring = self.frames.get(msg.camera)
            if ring is None:
                if len(self.frames) >= MAX_CAMERAS:
                    self.malformed.record(topic, "cameras", f"frames of more than {MAX_CAMERAS} cameras")
                    return
                ring = self.frames[msg.camera] = _FrameRing()
            ring.frames[msg.frame_id] = msg.image
            # Each camera's share of the budget: one camera keeps what the view always kept, many stay bounded.
            keep = max(2, min(RECENT_FRAMES, FRAME_BUDGET // len(self.frames)))
            while len(ring.frames) > keep:
                ring.frames.popitem(last=False)
            ring.version += 1
            self.latest_index = msg.camera
            self.frame_version += 1
            self.frames_changed.notify_all()

    # ---- frames: subscribed only while someone watches ---------------------------------------------------
    @contextmanager
    def watching_frames(self) -> Iterator[None]:
        """Frames are the fleet's heaviest traffic: the view takes them only while a stream client is open."""
        with self.lock:
            self.stream_clients += 1
            first = self.stream_clients == 1
        if first:
            self._set_frames_subscription(True)
        try:
            yield
        finally:
            with self.lock:
                self.stream_clients -= 1
                last = self.stream_clients == 0
                if last:
                    self.frames.clear()
            if last:
                self._set_frames_subscription(False)

    def _set_frames_subscription(self, on: bool) -> None:
        frames = self.topics.frames
        others = [s for s in self.link.subscriptions if s[0] != frames]
        # A new list, never mutated in place: on_connect may be iterating the old one after a reconnect.
        self.link.subscriptions = [*others, (frames, 0)] if on else others
        if on:
            self.link.client.subscribe(frames, 0)
        else:
            self.link.client.unsubscribe(frames)

    @property
    def frames_subscribed(self) -> bool:
        return any(s[0] == self.topics.frames for s in self.link.subscriptions)

    # ---- cameras (call with self.lock held) ---------------------------------------------------------------
    def _camera_feeds(self) -> dict[str, CameraFeedStats]:
        """Every camera node's per-camera counts by camera name (several nodes may split the cameras)."""
        feeds: dict[str, CameraFeedStats] = {}
        for s in of_role(self.stats, CameraStats).values():
            for name, feed in s.cameras.items():
                feeds.setdefault(name, feed)
        return feeds

    def _index_of(self, camera: str) -> int | None:
        """The camera's index on the wire: the fleet file's or a matched frame's, else the camera node's stats."""
        cam = self.cameras.get(camera)
        if cam is not None and cam.index is not None:
            return cam.index
        feed = self._camera_feeds().get(camera)
        return feed.index if feed is not None else None

    def _index_by_frame(self, frame_id: int) -> int | None:
        """The index of the camera whose recent frames hold this frame id (ids are the camera node's, one count
        over its cameras), None when no recent frame has it."""
        return next((i for i, ring in self.frames.items() if frame_id in ring.frames), None)

    def _camera_names(self) -> list[str]:
        """The cameras the page shows: those named so far, then those only the camera node's stats name; at most
        MAX_CAMERAS, in index order where the index is known."""
        names = list(dict.fromkeys([*self.cameras, *self._camera_feeds()]))[:MAX_CAMERAS]
        index = {n: self._index_of(n) for n in names}
        return sorted(names, key=lambda n: (index[n] is None, index[n] or 0, n))

    def _version(self, camera: str | None) -> int:
        """Changes whenever the camera's picture would: a new frame of it or a new prediction for it."""
        if camera is None:
            return self.frame_version
        cam, index = self.cameras.get(camera), self._index_of(camera)
        ring = self.frames.get(index) if index is not None else None
        return (cam.version if cam else 0) + (ring.version if ring else 0)

    def has_camera(self, camera: str) -> bool:
        with self.lock:
            return camera in self._camera_names()

    def camera_names(self) -> list[str]:
        with self.lock:
            return self._camera_names()

    def wait_picture(self, camera: str | None, seen_version: int, timeout: float, stopping: threading.Event) -> int:
        """Waits (bounded) until the camera's picture changes; its version then."""
        with self.frames_changed:
            self.frames_changed.wait_for(lambda: self._version(camera) != seen_version or stopping.is_set(), timeout)
            return self._version(camera)

    def frame_for_display(self, camera: str | None = None) -> tuple[np.ndarray | None, PredictionRow | None, bool]:
        """(frame, latest prediction, whether that prediction is for this very frame) of one camera, or of the
        fleet (the latest prediction of any camera) when `camera` is None.

        The prediction for frame n arrives after n+1 may already be here: draw it on its own frame when that frame
        is still in the recent buffer, so the label never sits on the wrong image.
        """
        with self.lock:
            if camera is None:
                pred = self.prediction
                index = self.latest_index if pred is None or pred.camera is None else self._index_of(pred.camera)
            else:
                cam = self.cameras.get(camera)
                pred = cam.prediction if cam else None
                index = self._index_of(camera)
                if index is None and pred is not None and cam is not None:
                    index = cam.index = self._index_by_frame(pred.frame_id)
            ring = self.frames.get(index) if index is not None else None
            if camera is None and ring is None:
                ring = self.frames.get(self.latest_index) if self.latest_index is not None else None
            if ring is None:
                return None, pred, False
            if pred is not None and pred.frame_id in ring.frames:
                return ring.frames[pred.frame_id], pred, True
            return next(reversed(ring.frames.values()), None), pred, False

    # ---- chart sampler ----------------------------------------------------------------------------------
    def _sample(self) -> None:
        now_mono = time.monotonic()
        with self.lock:
            count, e2e = self._bucket_count, self._bucket_e2e
            self._bucket_count, self._bucket_e2e = 0, []
            watts = [
                p.watts
                for b, p in self.power.items()
                if self.available.get(b) != Availability.OFFLINE
                and now_mono - self.seen_mono.get(b, 0.0) < POWER_FRESH_S
            ]
        fleet_watts = round(sum(watts), 3) if watts else None
        arr = np.asarray(e2e, dtype=float)
        point = ChartPoint(
            t=time.time(),
            fps=float(count),
            e2e_p50_ms=round(float(np.percentile(arr, 50)), 3) if arr.size else None,
            e2e_p99_ms=round(float(np.percentile(arr, 99)), 3) if arr.size else None,
            fleet_watts=fleet_watts,
            mj_per_frame=round(fleet_watts * 1e3 / count, 3) if fleet_watts is not None and count else None,
        )
        with self.lock:
            self.chart.append(point)

    def _sampler_loop(self) -> None:
        next_t = time.monotonic() + 1.0
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            next_t += 1.0
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - a chart glitch must never stop the view (or its host process)
                log.exception("chart sample failed")

    # ---- lifecycle --------------------------------------------------------------------------------------
    def start(self, wait: float | None = None) -> WebState:
        """No wait by default: the page must come up (and say "broker unreachable") even while the broker is
        down; the one-machine fleet waits, so that it sees its processes from their first message."""
        self.link.start(wait=wait)
        self._sampler = threading.Thread(target=self._sampler_loop, name="web-chart", daemon=True)
        self._sampler.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.frames_changed:
            self.frames_changed.notify_all()
        self.link.stop()
        if self._sampler is not None:
            self._sampler.join(timeout=2.0)

    # ---- the page's JSON --------------------------------------------------------------------------------
    def _tile(self, name: str, now_mono: float) -> BoardTile:
        s, p = self.stats.get(name), self.power.get(name)
        a = s if isinstance(s, AgentStats) else None
        seen = self.seen_mono.get(name)
        status = self.available.get(name)
        return BoardTile(
            name=name,
            role=s.role if s else None,
            status=status.value if status else "unknown",
            last_seen_s=round(now_mono - seen, 1) if seen else None,
            fps=s.fps if s else None,
            part=a.part if a else None,
            infer_p50_ms=a.infer_p50_ms if a else None,
            infer_p99_ms=a.infer_p99_ms if a else None,
            drops=a.drops if a else None,
            cpu_percent=a.cpu_percent if a else None,
            rss_mb=a.rss_mb if a else None,
            watts=p.watts if p else None,
            power_source=p.source if p else None,
            power_estimated=p.estimated if p else None,
        )

    def _camera_tile(self, name: str, feed: CameraFeedStats | None) -> CameraTile:
        cam = self.cameras.get(name)
        counts: dict[str, Any] = {}
        if feed is not None:
            counts = {
                k: getattr(feed, k)
                for k in (
                    "weight",
                    "offered",
                    "admitted",
                    "skipped",
                    "lost",
                    "answered_late",
                    "predictions",
                    "degraded",
                    "accuracy",
                    "e2e_p50_ms",
                    "e2e_p99_ms",
                )
            }
        return CameraTile(
            name=name,
            index=self._index_of(name),
            stream=stream_path(name),
            prediction=cam.prediction if cam else None,
            predictions_seen=cam.seen if cam else 0,
            **counts,
        )

    def snapshot(self) -> ViewState:
        connected = self.link.connected.is_set()
        now_mono = time.monotonic()
        if connected:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now_mono
        with self.lock:
            names = list(dict.fromkeys([*self.known_boards, *sorted(self.seen_mono)]))
            tiles = [self._tile(n, now_mono) for n in names]
            feeds = self._camera_feeds()
            cameras = [self._camera_tile(n, feeds.get(n)) for n in self._camera_names()]
            summary = _summary(first_of(self.stats, AggregatorStats), first_of(self.stats, CameraStats))
            state = ViewState(
                fleet=self.fleet_name,
                broker=self.broker_label,
                broker_connected=connected,
                broker_down_s=None if self._down_since is None else round(now_mono - self._down_since, 1),
                prediction=self.prediction,
                predictions_seen=self.predictions_seen,
                cameras=cameras,
                boards=tiles,
                summary=summary,
                chart=list(self.chart),
                log=list(reversed(self.tail)),
                stream_clients=self.stream_clients,
                frames_subscribed=self.frames_subscribed,
                malformed=self.malformed.by_reason(),
                generated_at=time.time(),
            )
        return state

    # ---- the fleet's state for the workstation's harness (its terminal dashboard, its waits) -------------------
    def stats_of(self, board: str) -> Stats | None:
        """The board's latest stats (an AgentStats, AggregatorStats or CameraStats), None before any arrived."""
        with self.lock:
            return self.stats.get(board)

    def wait_online(self, boards: list[str], timeout: float, alive: Callable[[], None] | None = None) -> list[str]:
        """Wait until every board published `online`; the ones still missing. `alive` is called while waiting
        and may raise to stop early (a child process died)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                missing = [b for b in boards if self.available.get(b) != Availability.ONLINE]
            if not missing or time.monotonic() >= deadline:
                return missing
            if alive is not None:
                alive()
            self.changed.wait(0.2)
            self.changed.clear()

    def fleet_snapshot(self) -> FleetSnapshot:
        """What the fleet reported at one instant, as decoded models (the terminal dashboard renders it)."""
        with self.lock:
            return FleetSnapshot(self.reports.copy(), self.prediction, self.predictions_seen)

    def raw(self) -> BoardReports:
        """A copy of each board's availability, stats and power (for the metrics exporter)."""
        with self.lock:
            return self.reports.copy()


def _summary(agg: AggregatorStats | None, cam: CameraStats | None) -> FleetSummary:
    """The fleet figures the aggregator and the camera node report; None where that process has not reported."""
    fields: dict[str, Any] = {}
    if agg is not None:
        fields.update(
            predictions=agg.predictions,
            degraded=agg.degraded,
            late=agg.late,
            deadline_ms=agg.deadline_ms,
            hop_p50_ms=agg.hop_p50_ms,
            hop_p99_ms=agg.hop_p99_ms,
            fleet_watts=agg.fleet_watts,
            mj_per_frame=agg.mj_per_frame,
            power_estimated=agg.power_estimated,
        )
    if cam is not None:
        fields.update(
            camera_e2e_p50_ms=cam.e2e_p50_ms,
            camera_e2e_p99_ms=cam.e2e_p99_ms,
            frames_sent=cam.frames_sent,
            skipped=cam.skipped,
            lost=cam.lost,
            answered_late=cam.answered_late,
            accuracy=cam.accuracy,
        )
    return FleetSummary(**fields)
