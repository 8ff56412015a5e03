"""The fleet plan (JSON on `plan`, retained): which board runs which parts, and why.

The aggregator (the fleet's coordinator, agent/coordinator.py) publishes it; agents follow it
(agent/plan_follower.py). One typed model that the coordinator builds and every reader validates, like the
prediction message. Agents acknowledge a plan in their stats (`PlanAck`): which parts they host, which they
refused and why, and the memory each loaded part took.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PLAN_VERSION = 1


class FleetPlanMessage(BaseModel):
    # strict and closed, as the prediction: a plan that bends the types is malformed, never half-followed.
    model_config = ConfigDict(extra="forbid", strict=True)

    v: int = PLAN_VERSION
    # Unique and increasing: the coordinator's wall clock in µs when it made the plan, and at least the previous
    # plan's id + 1 (so a restarted coordinator that adopted the retained plan still counts up). Agents follow
    # only a plan newer than the one they follow.
    plan_id: int = Field(ge=0)
    created_ns: int
    reason: str
    # board -> the parts it runs, ascending. A board that is not listed keeps what it runs (as without a plan).
    assignments: dict[str, list[int]]
    # parts no live board can take (too little memory, or every candidate refused the engine): answers stay
    # degraded without them until a board with room comes back.
    unplaced: list[int] = []
    num_parts: int = Field(gt=0)
    # where an agent that lacks a part's engine fetches it: GET <engines_url><file name from the manifest>;
    # None when the coordinator serves no engines (deploy shipped every engine to every board).
    engines_url: str | None = None

    def parts_of(self, board: str) -> list[int] | None:
        """The parts `board` must run, or None when the plan does not name it."""
        return self.assignments.get(board)


class PlanAck(BaseModel):
    """The plan fields of an agent's stats message (the rest of the stats is ignored here)."""

    model_config = ConfigDict(extra="ignore")

    board: str
    role: str
    plan_id: int | None = None
    parts: list[int] = []
    failed_parts: dict[str, str] = {}  # part (as a JSON key) -> why it was refused
    part_mem_mb: dict[str, float] = {}  # part -> resident memory its engine session added when loaded
