"""The prediction message (JSON on `predictions`): one typed model that the aggregator builds and every
reader (camera node, agents with a local camera, the log, the view) validates, instead of checks by key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PREDICTION_VERSION = 2  # 2: the camera's name


class PartTiming(BaseModel):
    """One part's contribution to a fused frame, timed on the clocks that saw it (ms)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    part: int = Field(ge=0)
    frame_hop_ms: float  # camera -> agent
    agent_ms: float  # waiting + preprocess + infer
    infer_ms: float
    feature_hop_ms: float  # agent -> aggregator
    arrival_ms: float  # capture -> aggregator


class Prediction(BaseModel):
    # strict: a bool is not an int, a string is not a number — a message that bends the types is malformed.
    model_config = ConfigDict(extra="forbid", strict=True)

    v: int = PREDICTION_VERSION
    frame_id: int
    camera: str  # the fleet camera the frame came from; also the topic's last level
    capture_ns: int
    class_id: int = Field(ge=0)
    class_name: str
    score: float
    label: int | None
    degraded: bool
    missing_parts: list[int]
    parts: list[PartTiming]
    wait_ms: float
    fusion_ms: float
    fused_ns: int
