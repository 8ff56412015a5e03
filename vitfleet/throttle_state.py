"""A board's throttling state, as its agent reports it in its stats (`AgentStats.throttle`).

The readers behind it live on the board (vitfleet/power/throttle*.py); this is only the wire shape, shared by the
agent that sends it and the coordinator, views and bench that read it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ThrottleSource = Literal["vcgencmd", "thermal", "jtop", "measured", "none"]


class ThrottleState(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    source: ThrottleSource
    throttled: bool = False  # the board runs slower than it can right now
    reasons: list[str] = []  # what the reader saw, in its own words (e.g. "under-voltage now")
    temp_c: float | None = None  # hottest thermal zone, when the board has any
    # measured: this board's recent frames per busy second over the best it sustained with the same parts
    speed_ratio: float | None = Field(None, ge=0)
    # False when the reader was only ever run against a stand-in, never on the hardware it is for
    verified: bool = True
