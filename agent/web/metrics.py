"""`/metrics`: the fleet in the Prometheus text format, from one dedicated CollectorRegistry per server.

Two kinds of figures:
- what the view itself observes, as real prometheus-client metrics: predictions and degraded ones received,
  end-to-end and per-part inference latency histograms, malformed messages by reason;
- what the boards report about themselves (stats every 2 s, power every 1 s), read from the view's state on
  each scrape by a custom collector: their cumulative counts become counters (a board restart resets them,
  which Prometheus' rate() handles), their instant figures gauges. The camera node's per-camera counts carry a
  `camera` label, for the cameras the view tracks (bounded like its tiles).
No global registry: two servers in one process (tests, an aggregator that also serves) never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from vitfleet.agent.web.state import WebState
from vitfleet.power_message import PowerSnapshot
from vitfleet.prediction_message import Prediction
from vitfleet.stats_message import AgentStats, AggregatorStats, BoardStats, CameraStats, Stats, first_of, of_role
from vitfleet.topics import Availability

# The text format every Prometheus version scrapes (1.0.0 needs a recent server).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


# (stats field, metric name without the _total suffix, help) for counters the boards report cumulatively.
AGENT_COUNTERS = [
    ("frames", "vitfleet_board_frames", "frames this agent computed"),
    ("drops", "vitfleet_board_drops", "frames replaced in the agent's slot before inference"),
    ("errors", "vitfleet_board_errors", "inference errors on this agent"),
]
BOARD_COUNTERS = [("malformed", "vitfleet_board_malformed_messages", "malformed messages this process dropped")]
AGGREGATOR_COUNTERS = [
    ("predictions", "vitfleet_fleet_predictions", "predictions the aggregator fused"),
    ("degraded", "vitfleet_fleet_degraded", "predictions fused with a part missing"),
    ("late", "vitfleet_fleet_late_parts", "parts that arrived after their frame was fused"),
    ("evicted", "vitfleet_fleet_evicted", "frames fused early because too many were pending"),
]
CAMERA_COUNTERS = [
    ("frames_sent", "vitfleet_camera_frames_sent", "frames admitted and published by the camera"),
    ("skipped", "vitfleet_camera_skipped", "frames skipped at the source for want of a credit"),
    (
        "lost",
        "vitfleet_camera_lost_frames",
        "admitted frames with no answer within the reclaim timeout (they stay lost when answered late)",
    ),
    (
        "answered_late",
        "vitfleet_camera_answered_late_frames",
        "lost frames whose answer came after their credit was reclaimed",
    ),
]

# (per-camera stats field, metric name without _total, help): the camera node's counts for each of its cameras.
CAMERA_FEED_COUNTERS = [
    ("offered", "vitfleet_camera_feed_offered_frames", "frames this camera's source delivered"),
    ("admitted", "vitfleet_camera_feed_admitted_frames", "frames of this camera admitted and published"),
    (
        "skipped",
        "vitfleet_camera_feed_skipped_frames",
        "frames of this camera skipped at the source for want of a credit",
    ),
    (
        "lost",
        "vitfleet_camera_feed_lost_frames",
        "admitted frames of this camera with no answer within the reclaim timeout",
    ),
    ("answered_late", "vitfleet_camera_feed_answered_late_frames", "lost frames of this camera answered after all"),
    ("predictions", "vitfleet_camera_feed_predictions", "answers the camera node matched to this camera's frames"),
    ("degraded", "vitfleet_camera_feed_degraded", "answers to this camera's frames fused with a part missing"),
]


class FleetCollector(Collector):
    """Reads the boards' own reports from the view's state at scrape time."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        reports = self.state.raw()
        available, stats, power = reports.available, reports.stats, reports.power
        boards = sorted(set(available) | set(stats) | set(power))
        up = GaugeMetricFamily(
            "vitfleet_board_up", "1 while the board's retained availability says online", labels=["board"]
        )
        for b in boards:
            up.add_metric([b], 1.0 if available.get(b) == Availability.ONLINE else 0.0)
        yield up
        yield from self._counters(stats, AgentStats, AGENT_COUNTERS, with_part=True)
        yield from self._counters(stats, BoardStats, BOARD_COUNTERS)
        yield from self._counters(stats, AggregatorStats, AGGREGATOR_COUNTERS)
        yield from self._counters(stats, CameraStats, CAMERA_COUNTERS)
        unanswered = GaugeMetricFamily(
            "vitfleet_camera_unanswered_frames",
            "frames the camera sent without an answer yet (in flight, or lost)",
            labels=["board"],
        )
        gauges = {
            "fps": GaugeMetricFamily(
                "vitfleet_board_fps", "messages per second this process handles", labels=["board", "role"]
            ),
            "cpu": GaugeMetricFamily("vitfleet_board_cpu_percent", "CPU use of the agent process", labels=["board"]),
            "rss": GaugeMetricFamily(
                "vitfleet_board_resident_memory_bytes", "resident memory of the agent process", labels=["board"]
            ),
            "infer": GaugeMetricFamily(
                "vitfleet_board_inference_quantile_seconds",
                "engine time per frame over the agent's recent window",
                labels=["board", "quantile"],
            ),
        }
        for b, s in sorted(stats.items()):
            if available.get(b) == Availability.OFFLINE:
                continue  # a dead board's last instant figures would read as live ones
            gauges["fps"].add_metric([b, s.role], s.fps)
            if isinstance(s, AgentStats):
                if s.cpu_percent is not None:
                    gauges["cpu"].add_metric([b], s.cpu_percent)
                if s.rss_mb is not None:
                    gauges["rss"].add_metric([b], s.rss_mb * 1e6)
                for q, ms in (("0.5", s.infer_p50_ms), ("0.99", s.infer_p99_ms)):
                    if ms is not None:
                        gauges["infer"].add_metric([b, q], ms / 1e3)
            if isinstance(s, CameraStats):
                unanswered.add_metric([b], max(0.0, s.frames_sent - s.predictions))
        yield from gauges.values()
        yield unanswered
        yield from self._camera_feeds(stats, set(self.state.camera_names()))
        yield from self._power(available, power, stats)

    @staticmethod
    def _counters(
        stats: dict[str, Stats], kind: type[BoardStats], spec: list[tuple[str, str, str]], with_part: bool = False
    ) -> Iterator[Metric]:
        for key, name, doc in spec:
            family = CounterMetricFamily(name, doc, labels=["board", "part"] if with_part else ["board"])
            for b, s in of_role(stats, kind).items():
                part = getattr(s, "part", None)
                labels = [b, "" if part is None else str(part)] if with_part else [b]
                family.add_metric(labels, float(getattr(s, key)))
            yield family

    @staticmethod
    def _camera_feeds(stats: dict[str, Stats], tracked: set[str]) -> Iterator[Metric]:
        """Per camera, from every camera node's stats; only cameras the view tracks, so a bogus stats message
        naming thousands of cameras cannot blow up the series."""
        counters = [
            (key, CounterMetricFamily(name, doc, labels=["board", "camera"])) for key, name, doc in CAMERA_FEED_COUNTERS
        ]
        accuracy = GaugeMetricFamily(
            "vitfleet_camera_feed_accuracy_ratio",
            "running accuracy of the answers to this camera's labelled frames",
            labels=["board", "camera"],
        )
        e2e = GaugeMetricFamily(
            "vitfleet_camera_feed_end_to_end_quantile_seconds",
            "capture to answer on the camera node's clock, this camera's frames",
            labels=["board", "camera", "quantile"],
        )
        for b, s in of_role(stats, CameraStats).items():
            for camera, feed in sorted(s.cameras.items()):
                if camera not in tracked:
                    continue
                for key, family in counters:
                    family.add_metric([b, camera], float(getattr(feed, key)))
                if feed.accuracy is not None:
                    accuracy.add_metric([b, camera], feed.accuracy)
                for q, ms in (("0.5", feed.e2e_p50_ms), ("0.99", feed.e2e_p99_ms)):
                    if ms is not None:
                        e2e.add_metric([b, camera, q], ms / 1e3)
        for _, family in counters:
            yield family
        yield accuracy
        yield e2e

    @staticmethod
    def _power(
        available: dict[str, Availability], power: dict[str, PowerSnapshot], stats: dict[str, Stats]
    ) -> Iterator[Metric]:
        watts = GaugeMetricFamily(
            "vitfleet_board_watts", "the board's latest power reading", labels=["board", "source", "estimated"]
        )
        joules = CounterMetricFamily(
            "vitfleet_board_energy_joules", "energy the board used since its agent started", labels=["board"]
        )
        for b, p in sorted(power.items()):
            if available.get(b) != Availability.OFFLINE:
                watts.add_metric([b, p.source, "true" if p.estimated else "false"], p.watts)
            joules.add_metric([b], p.joules)
        yield watts
        yield joules
        agg = first_of(stats, AggregatorStats)
        fleet_w = GaugeMetricFamily(
            "vitfleet_fleet_power_watts", "the boards' summed draw, as the aggregator reports it"
        )
        mj = GaugeMetricFamily("vitfleet_fleet_energy_per_frame_millijoules", "fleet energy per fused frame")
        if agg is not None and agg.fleet_watts is not None:
            fleet_w.add_metric([], agg.fleet_watts)
        if agg is not None and agg.mj_per_frame is not None:
            mj.add_metric([], agg.mj_per_frame)
        yield fleet_w
        yield mj


class ViewMetrics:
    """The registry one server exposes, plus the hooks the view feeds as predictions arrive."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.predictions = Counter("vitfleet_predictions", "predictions this view received", registry=r)
        self.degraded = Counter(
            "vitfleet_predictions_degraded", "received predictions fused with a part missing", registry=r
        )
        self.e2e = Histogram(
            "vitfleet_end_to_end_latency_seconds",
            "capture to this view's receipt of the prediction (one clock when the view runs beside the camera)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "vitfleet_inference_latency_seconds",
            "engine time per part, from the predictions' part timings",
            ["part"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.connected = Gauge(
            "vitfleet_view_broker_connected", "1 while the view is connected to the broker", registry=r
        )
        self._state: WebState | None = None

    def observe(self, pred: Prediction, e2e_ms: float) -> None:
        self.predictions.inc()
        if pred.degraded:
            self.degraded.inc()
        self.e2e.observe(max(0.0, e2e_ms / 1e3))
        for part in pred.parts:
            self.inference.labels(str(part.part)).observe(max(0.0, part.infer_ms / 1e3))

    def attach(self, state: WebState) -> None:
        self._state = state
        self.registry.register(FleetCollector(state))
        self.registry.register(_MalformedCollector(state))
        self.connected.set_function(lambda: 1.0 if state.link.connected.is_set() else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _MalformedCollector(Collector):
    def __init__(self, state: WebState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "vitfleet_view_malformed_messages", "messages this view refused, by reason", labels=["reason"]
        )
        for reason, n in sorted(self.state.malformed.by_reason().items()):
            family.add_metric([reason], float(n))
        yield family
