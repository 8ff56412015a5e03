"""The boards/<board>/power message: one JSON object per second per board.

{"ts": 1732380000.12, "watts": 4.81, "joules": 1234.5, "frames": 9876, "source": "rapl",
 "estimated": false}

ts is the publisher's time.time(); watts the latest sample; joules and frames count from the
sampler's start. from_json refuses anything else with a PowerMessageError that says what is
wrong, so the aggregator can count and log it without crashing. The field checks are the
pydantic model's; only what pydantic cannot see (size, NaN literals, repeated keys) is checked
while decoding.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from vitfleet.json_payload import decode_json_object, first_error

MAX_POWER_MESSAGE_BYTES = 1024
MAX_WATTS = 100_000.0  # no single board draws 100 kW; larger values are garbage
MAX_SOURCE_CHARS = 80
MAX_FRAMES = 2**53  # beyond this a JSON number stops being an exact integer for most readers

# A meter's name: printable (it lands in logs and metric labels), one line.
Source = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SOURCE_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PowerMessageError(ValueError):
    """A power message that is not a valid PowerSnapshot; str(error) says why."""


class PowerSnapshot(BaseModel):
    # strict: a bool is not a number and "4.8" is not a float; ints are accepted where floats are (JSON has one
    # number type). Frozen: snapshots are values, compared and hashed as such.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    ts: Annotated[float, Field(gt=0.0, le=1e11)]  # time.time(): after 1970, before year 5138
    watts: Annotated[float, Field(ge=0.0, le=MAX_WATTS)]
    joules: Annotated[float, Field(ge=0.0, le=1e15)]
    frames: Annotated[int, Field(ge=0, le=MAX_FRAMES)]
    source: Source
    estimated: bool

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(), separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> PowerSnapshot:
        try:
            return cls.model_validate(
                decode_json_object(payload, "power message", PowerMessageError, MAX_POWER_MESSAGE_BYTES)
            )
        except ValidationError as exc:
            raise PowerMessageError(f"power message: {first_error(exc)}") from None
