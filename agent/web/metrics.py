"""`/metrics`: the fleet in the Prometheus text format, from one dedicated CollectorRegistry per server.

Two kinds of figures:
- what the view itself observes, as real prometheus-client metrics: predictions and degraded ones received,
  end-to-end and per-part inference latency histograms, malformed messages by reason;
- what the boards report about themselves (stats every 2 s, power every 1 s), read from the view's state on
  each scrape by a custom collector: their cumulative counts become counters (a board restart resets them,
  which Prometheus' rate() handles), their instant figures gauges.
No global registry: two servers in one process (tests, an aggregator that also serves) never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vitfleet.agent.prediction_message import Prediction
from vitfleet.agent.web.state import WebState

# The text format every Prometheus version scrapes (1.0.0 needs a recent server).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# (stats key, metric name without the _total suffix, help) for counters the boards report cumulatively.
AGENT_COUNTERS = [("frames", "vitfleet_board_frames", "frames this agent computed"),
                  ("drops", "vitfleet_board_drops", "frames replaced in the agent's slot before inference"),
                  ("errors", "vitfleet_board_errors", "inference errors on this agent")]
BOARD_COUNTERS = [("malformed", "vitfleet_board_malformed_messages", "malformed messages this process dropped")]
AGGREGATOR_COUNTERS = [("predictions", "vitfleet_fleet_predictions", "predictions the aggregator fused"),
                       ("degraded", "vitfleet_fleet_degraded", "predictions fused with a part missing"),
                       ("late", "vitfleet_fleet_late_parts", "parts that arrived after their frame was fused"),
                       ("evicted", "vitfleet_fleet_evicted", "frames fused early because too many were pending")]
CAMERA_COUNTERS = [("frames_sent", "vitfleet_camera_frames_sent", "frames admitted and published by the camera"),
                   ("skipped", "vitfleet_camera_skipped", "frames skipped at the source for want of a credit")]


class FleetCollector(Collector):
    """Reads the boards' own reports from the view's state at scrape time."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        available, stats, power = self.state.raw()
        boards = sorted(set(available) | set(stats) | set(power))
        up = GaugeMetricFamily("vitfleet_board_up", "1 while the board's retained availability says online",
                               labels=["board"])
        for b in boards:
            up.add_metric([b], 1.0 if available.get(b) == "online" else 0.0)
        yield up
        yield from self._counters(stats, "agent", AGENT_COUNTERS, with_part=True)
        yield from self._counters(stats, None, BOARD_COUNTERS)
        yield from self._counters(stats, "aggregator", AGGREGATOR_COUNTERS)
        yield from self._counters(stats, "camera", CAMERA_COUNTERS)
        unanswered = GaugeMetricFamily("vitfleet_camera_unanswered_frames",
                                       "frames the camera sent without an answer yet (in flight, or lost)",
                                       labels=["board"])
        gauges = {
            "fps": GaugeMetricFamily("vitfleet_board_fps", "messages per second this process handles",
                                     labels=["board", "role"]),
            "cpu": GaugeMetricFamily("vitfleet_board_cpu_percent", "CPU use of the agent process",
                                     labels=["board"]),
            "rss": GaugeMetricFamily("vitfleet_board_resident_memory_bytes", "resident memory of the agent process",
                                     labels=["board"]),
            "infer": GaugeMetricFamily("vitfleet_board_inference_quantile_seconds",
                                       "engine time per frame over the agent's recent window",
                                       labels=["board", "quantile"]),
        }
        for b, s in sorted(stats.items()):
            if available.get(b) == "offline":
                continue   # a dead board's last instant figures would read as live ones
            role = s.get("role") if isinstance(s.get("role"), str) else ""
            if (fps := _num(s.get("fps"))) is not None:
                gauges["fps"].add_metric([b, role], fps)
            if (cpu := _num(s.get("cpu_percent"))) is not None:
                gauges["cpu"].add_metric([b], cpu)
            if (rss := _num(s.get("rss_mb"))) is not None:
                gauges["rss"].add_metric([b], rss * 1e6)
            for q, key in (("0.5", "infer_p50_ms"), ("0.99", "infer_p99_ms")):
                if (ms := _num(s.get(key))) is not None:
                    gauges["infer"].add_metric([b, q], ms / 1e3)
            if role == "camera":
                sent, answered = _num(s.get("frames_sent")), _num(s.get("predictions"))
                if sent is not None and answered is not None:
                    unanswered.add_metric([b], max(0.0, sent - answered))
        yield from gauges.values()
        yield unanswered
        yield from self._power(available, power, stats)

    @staticmethod
    def _counters(stats: dict[str, dict[str, Any]], role: str | None, spec: list[tuple[str, str, str]],
                  with_part: bool = False) -> Iterator[Metric]:
        for key, name, doc in spec:
            family = CounterMetricFamily(name, doc, labels=["board", "part"] if with_part else ["board"])
            for b, s in sorted(stats.items()):
                if role is not None and s.get("role") != role:
                    continue
                value = _num(s.get(key))
                if value is None:
                    continue
                labels = [b, str(s.get("part", ""))] if with_part else [b]
                family.add_metric(labels, value)
            yield family

    @staticmethod
    def _power(available: dict[str, str], power: dict[str, dict[str, Any]],
               stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        watts = GaugeMetricFamily("vitfleet_board_watts", "the board's latest power reading",
                                  labels=["board", "source", "estimated"])
        joules = CounterMetricFamily("vitfleet_board_energy_joules", "energy the board used since its agent started",
                                     labels=["board"])
        for b, p in sorted(power.items()):
            source = p.get("source") if isinstance(p.get("source"), str) else ""
            estimated = "true" if p.get("estimated") is True else "false"
            if (w := _num(p.get("watts"))) is not None and available.get(b) != "offline":
                watts.add_metric([b, source, estimated], w)
            if (j := _num(p.get("joules"))) is not None:
                joules.add_metric([b], j)
        yield watts
        yield joules
        agg = next((s for s in stats.values() if s.get("role") == "aggregator"), {})
        fleet_w = GaugeMetricFamily("vitfleet_fleet_power_watts", "the boards' summed draw, as the aggregator "
                                                                  "reports it")
        mj = GaugeMetricFamily("vitfleet_fleet_energy_per_frame_millijoules", "fleet energy per fused frame")
        if (v := _num(agg.get("fleet_watts"))) is not None:
            fleet_w.add_metric([], v)
        if (v := _num(agg.get("mj_per_frame"))) is not None:
            mj.add_metric([], v)
        yield fleet_w
        yield mj


class ViewMetrics:
    """The registry one server exposes, plus the hooks the view feeds as predictions arrive."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.predictions = Counter("vitfleet_predictions", "predictions this view received", registry=r)
        self.degraded = Counter("vitfleet_predictions_degraded", "received predictions fused with a part missing",
                                registry=r)
        self.e2e = Histogram("vitfleet_end_to_end_latency_seconds", "capture to this view's receipt of the "
                             "prediction (one clock when the view runs beside the camera)", buckets=LATENCY_BUCKETS,
                             registry=r)
        self.inference = Histogram("vitfleet_inference_latency_seconds", "engine time per part, from the "
                                   "predictions' part timings", ["part"], buckets=LATENCY_BUCKETS, registry=r)
        self.connected = Gauge("vitfleet_view_broker_connected", "1 while the view is connected to the broker",
                               registry=r)
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
        family = CounterMetricFamily("vitfleet_view_malformed_messages", "messages this view refused, by reason",
                                     labels=["reason"])
        for reason, n in sorted(self.state.malformed.by_reason().items()):
            family.add_metric([reason], float(n))
        yield family
