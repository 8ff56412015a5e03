"""One row per contender: the figures the report, the plots and the ratios are made of.

Latency model (stated in the report): a single-model contender's latency is its isolated inference on one
board (the camera is on that board). A fleet's critical path = slowest part (isolated median) + transport
+ fusion (isolated median), where transport (MQTT hops camera->agent->aggregator->camera plus agents'
decode/preprocess/publish and the aggregator's wait) is taken from the real K=2 run's lockstep breakdown.
K=2 fleets also carry the measured end-to-end latency of that real run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TRANSPORT_KEYS = ("frame_hop_ms", "queue_ms", "feature_hop_ms", "wait_ms", "prediction_hop_ms")


@dataclass
class Contender:
    name: str
    kind: str  # teacher | compact | fleet
    precision: str
    method: str | None = None
    parts: int = 1
    params_per_board: list[int] = field(default_factory=list)
    bytes_per_board: list[int] = field(default_factory=list)
    fusion_bytes: int | None = None
    top1: float | None = None
    top1_without_part: list[float] = field(default_factory=list)
    part_median_ms: list[float] = field(default_factory=list)
    part_p99_ms: list[float] = field(default_factory=list)
    fusion_median_ms: float = 0.0
    fusion_p99_ms: float = 0.0
    transport_ms: float = 0.0
    transport_source: str = ""
    measured_e2e_p50_ms: float | None = None
    measured_e2e_p99_ms: float | None = None
    measured_accuracy: float | None = None
    hop_p50_ms: float | None = None
    hop_p99_ms: float | None = None
    feature_payload_bytes: int | None = None
    feature_packet_bytes: int | None = None
    throughput_fps: float | None = None
    throughput_source: str = ""
    energy_mj_per_frame: float | None = None
    energy_estimated: bool = True
    latency_runs: int = 0
    fleet_run: dict[str, Any] | None = None

    @property
    def slowest_part_ms(self) -> float:
        return max(self.part_median_ms)

    @property
    def latency_ms(self) -> float:
        """Critical path for fleets (computed), isolated inference for single models."""
        return self.slowest_part_ms + self.transport_ms + self.fusion_median_ms

    @property
    def largest_bytes(self) -> int:
        return max(self.bytes_per_board)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_per_board)

    @property
    def largest_params(self) -> int:
        return max(self.params_per_board)

    @property
    def total_params(self) -> int:
        return sum(self.params_per_board)

    @property
    def worst_missing_top1(self) -> float | None:
        return min(self.top1_without_part) if self.top1_without_part else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            latency_ms=self.latency_ms,
            slowest_part_ms=self.slowest_part_ms,
            largest_bytes=self.largest_bytes,
            total_bytes=self.total_bytes,
            largest_params=self.largest_params,
            total_params=self.total_params,
            worst_missing_top1=self.worst_missing_top1,
        )
        return out


def transport_from_run(run: dict[str, Any]) -> float:
    b = run["lockstep"]["breakdown_p50_ms"]
    return float(sum(b.get(k) or 0.0 for k in TRANSPORT_KEYS))


def feature_bytes(dim: int, fleet_name: str = "bench", part: int = 0) -> tuple[int, int]:
    """(payload, MQTT PUBLISH packet) bytes of one feature message of width dim, encoded by the real encoder."""
    import numpy as np

    from vitfleet.agent.protocol import FeatureMessage, encode_features
    from vitfleet.topics import Topics

    payload = len(encode_features(FeatureMessage(0, 0, part, np.zeros(dim, np.float16), 0, 0, 0)))
    topic = Topics(fleet_name).features(part).encode()
    remaining = 2 + len(topic) + payload  # QoS 0: topic length + topic + payload, no packet id
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return payload, 1 + length_bytes + remaining


def strongest_compacts(contenders: list[Contender]) -> dict[str, Contender]:
    """Per precision, the more accurate compact single model (from scratch or distilled): the fleets' bar."""
    best: dict[str, Contender] = {}
    for c in contenders:
        if c.kind == "compact" and (c.precision not in best or (c.top1 or 0) > (best[c.precision].top1 or 0)):
            best[c.precision] = c
    return best


def ratios(c: Contender, teacher: Contender, compact: Contender | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "speedup_vs_teacher": teacher.latency_ms / c.latency_ms,
        "acc_delta_vs_teacher_pt": None if c.top1 is None or teacher.top1 is None else 100 * (c.top1 - teacher.top1),
        "size_reduction_largest_vs_teacher": teacher.largest_bytes / c.largest_bytes,
        "size_reduction_total_vs_teacher": teacher.total_bytes / c.total_bytes,
        "energy_ratio_vs_teacher": (
            None
            if c.energy_mj_per_frame is None or not teacher.energy_mj_per_frame
            else c.energy_mj_per_frame / teacher.energy_mj_per_frame
        ),
    }
    if compact is not None:
        out["acc_delta_vs_compact_pt"] = (
            None if c.top1 is None or compact.top1 is None else 100 * (c.top1 - compact.top1)
        )
        out["speed_ratio_vs_compact"] = compact.latency_ms / c.latency_ms
    return out
