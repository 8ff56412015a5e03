"""A board's hello (JSON on boards/<board>/hello, retained): who it is and what it can do, so a board started with
only a broker address can be found (`vitfleet deploy discover`) and, with `aggregator.adopt`, given parts.

The agent publishes it once connected; it stays on the broker (retained) until the board publishes another. One
typed, closed model: a hello that bends the types is malformed (counted, never half-read).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vitfleet.fleet_config import BoardKind
from vitfleet.json_payload import decode_json_object, first_error

HELLO_VERSION = 1
MAX_HELLO_BYTES = 16384


class HelloMessageError(ValueError):
    """A payload on boards/<board>/hello that is not a valid BoardHello; str(error) is one sentence saying why."""


class BoardHello(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    v: int = HELLO_VERSION
    board: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)  # as fleet.yaml's boards[].name
    kind: BoardKind
    arch: str = Field(max_length=32)  # `uname -m`
    cores: int = Field(gt=0)
    memory_mb: int = Field(gt=0)
    # GFLOP/s of the same benchmark as `vitfleet deploy profile` (fleet.yaml `speed:`), measured at start
    speed: float | None = Field(None, gt=0)
    host: str | None = Field(None, max_length=253)  # the address it reaches the broker from
    bundle_id: str | None = None  # the bundle its manifest is of; None without a manifest
    parts: list[int] = []  # parts whose engine it holds, checked against its manifest
    engines: list[str] = []  # those engine files
    ts: float  # when it said hello (epoch s)

    @classmethod
    def from_json(cls, payload: bytes) -> BoardHello:
        """The hello in `payload`, or HelloMessageError naming the first thing wrong with it."""
        try:
            return cls.model_validate(decode_json_object(payload, "board hello", HelloMessageError, MAX_HELLO_BYTES))
        except ValidationError as exc:
            raise HelloMessageError(
                f"board hello: {first_error(exc)}; the board may run another vitfleet version, upgrade it"
            ) from None
