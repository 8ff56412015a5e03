"""The stats messages (JSON on boards/<board>/stats, every 2 s): one typed model per role, told apart by `role`.

Every process builds its model and publishes `to_json()`; every reader (the live view, the web view and its
/metrics, the coordinator, the demo's and the bench's summaries) decodes with `parse_stats` and gets an
`AgentStats`, `AggregatorStats` or `CameraStats`, so a reader asks `isinstance` and reads attributes instead of
`.get("role")` and keys. Open to extra keys (unlike the prediction): stats are figures for people and
dashboards, and a newer board adding one must not blank an older view; the known ones are typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from vitfleet.fleet_plan_message import PlanAck
from vitfleet.throttle_state import ThrottleState

Ms = float | None  # a percentile in ms, None before the first sample


class BoardStats(BaseModel):
    """What every process's stats carry."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    board: str
    ts: float
    fps: float
    malformed: int = 0
    callback_errors: int = 0

    def to_json(self) -> str:
        return self.model_dump_json()


class AgentStats(BoardStats, PlanAck):
    """A board agent: its parts and the plan it follows (the coordinator's acknowledgement), inference figures."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    role: Literal["agent"] = "agent"
    part: int | None = None  # the first hosted part (what a one-part fleet shows)
    frames: int = 0
    infer_p50_ms: Ms = None
    infer_p99_ms: Ms = None
    total_p50_ms: Ms = None
    total_p99_ms: Ms = None
    own_fps: float | None = None  # frames per busy second: the rate this board reaches when never idle
    # own_fps over the last second or so with the parts it runs now (None until enough frames): what the
    # coordinator compares boards by, so a board that slows down mid-run is seen as slow
    recent_own_fps: float | None = None
    recent_frames: int = 0  # frames behind recent_own_fps
    recent_busy: float | None = None  # share of that window the board was busy (at its CPU quota, if any)
    throttle: ThrottleState | None = None
    slowdown: float = 1.0  # >1 when the agent emulates a slower board
    drops: int = 0
    errors: int = 0
    connects: int = 0
    cpu_percent: float | None = None
    rss_mb: float | None = None


class AggregatorStats(BoardStats):
    """The aggregator: fusion counts and timings, fleet power, and (when the fleet heals) its coordinator's plan."""

    role: Literal["aggregator"] = "aggregator"
    predictions: int = 0
    degraded: int = 0
    late: int = 0
    evicted: int = 0
    duplicate: int = 0
    pending: int = 0
    hop_p50_ms: Ms = None
    hop_p99_ms: Ms = None
    fusion_p50_ms: Ms = None
    fusion_p99_ms: Ms = None
    deadline_ms: float | None = None
    deadline_source: str | None = None
    boards: dict[str, str] = {}
    fleet_watts: float | None = None
    mj_per_frame: float | None = None
    power_estimated: bool | None = None
    board_watts: dict[str, float] = {}
    log_dropped: int = 0
    # the coordinator's figures (agent/coordinator.py), absent without healing
    plan_id: int | None = None
    plan_changes: int = 0
    plan: dict[str, list[int]] | None = None
    unplaced_parts: list[int] = []
    unplaced_why: list[str] = []
    plan_reason: str | None = None
    moving: bool = False
    heal_after_s: float | None = None
    speed_replans: int = 0  # plans made because a board's trusted speed changed
    board_speeds: dict[str, float] = {}  # trusted measured speeds (cost units per second), when re-planning


class CameraFeedStats(BaseModel):
    """One camera of a camera node: its admission counts and the answers to its frames."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    index: int = 0  # its id on the wire (its place in the fleet's `cameras`)
    weight: float = 1.0
    offered: int = 0
    admitted: int = 0
    skipped: int = 0
    lost: int = 0
    answered_late: int = 0
    predictions: int = 0
    degraded: int = 0
    accuracy: float | None = None
    e2e_p50_ms: Ms = None
    e2e_p99_ms: Ms = None


class CameraStats(BoardStats):
    """The camera node: what it admitted and skipped, answers it got back, end-to-end latency and accuracy."""

    role: Literal["camera"] = "camera"
    frames_sent: int = 0
    offered: int = 0  # frames the source delivered
    admitted: int = 0  # = frames_sent
    skipped: int = 0
    # admitted frames with no answer within the reclaim timeout (or still out when the run ended); never decreases
    lost: int = 0
    answered_late: int = 0  # lost frames whose answer came after all (they stay lost)
    predictions: int = 0
    degraded: int = 0
    unmatched: int = 0
    labelled: int = 0
    correct: int = 0
    labelled_clean: int = 0
    correct_clean: int = 0
    accuracy: float | None = None
    e2e_p50_ms: Ms = None
    e2e_p99_ms: Ms = None
    reconnects: int = 0  # times the live source dropped and was opened again
    cameras: dict[str, CameraFeedStats] = {}  # per camera, by name (one entry for a one-camera node)


Stats = Annotated[AgentStats | AggregatorStats | CameraStats, Field(discriminator="role")]
# Decodes any role's stats: MalformedCounter.parse_model(topic, payload, STATS, "stats").
STATS: TypeAdapter[Stats] = TypeAdapter(Stats)


S = TypeVar("S", bound=BoardStats)


def of_role(stats: Mapping[str, BoardStats], kind: type[S]) -> dict[str, S]:
    """The boards whose stats are of one role (e.g. every agent's), by board name."""
    return {b: s for b, s in sorted(stats.items()) if isinstance(s, kind)}


def first_of(stats: Mapping[str, BoardStats], kind: type[S]) -> S | None:
    """The stats of the fleet's one process of a role (its aggregator, its camera node), None before any arrived."""
    return next(iter(of_role(stats, kind).values()), None)
