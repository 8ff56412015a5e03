"""A board's hello (JSON on boards/<board>/hello, retained): who it is and what it can do, so a board started with
only a broker address can be found (`vitfleet deploy discover`) and, with `aggregator.adopt`, given parts.

The agent publishes it once connected; it stays on the broker (retained) until the board publishes another. One
typed, closed model: a hello that bends the types is malformed (counted, never half-read).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vitfleet.board_kinds import BoardKind

HELLO_VERSION = 1
MAX_HELLO_BYTES = 16384


class HelloMessageError(ValueError):
    """A payload on boards/<board>/hello that is not a valid BoardHello; str(error) is one sentence saying why."""


class BoardHello(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    v: int = HELLO_VERSION
    board: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)   # as fleet.yaml's boards[].name
    kind: BoardKind
    arch: str = Field(max_length=32)            # `uname -m`
    cores: int = Field(gt=0)
    memory_mb: int = Field(gt=0)
    # GFLOP/s of the same benchmark as `vitfleet deploy profile` (fleet.yaml `speed:`), measured at start
    speed: float | None = Field(None, gt=0)
    host: str | None = Field(None, max_length=253)   # the address it reaches the broker from
    bundle_id: str | None = None                # the bundle its manifest is of; None without a manifest
    parts: list[int] = []                       # parts whose engine it holds, checked against its manifest
    engines: list[str] = []                     # those engine files
    ts: float                                   # when it said hello (epoch s)

    @classmethod
    def from_json(cls, payload: bytes) -> "BoardHello":
        """The hello in `payload`, or HelloMessageError naming the first thing wrong with it."""
        if len(payload) > MAX_HELLO_BYTES:
            raise HelloMessageError(f"board hello is {len(payload)} bytes, over the {MAX_HELLO_BYTES}-byte limit")
        try:
            data = json.loads(bytes(payload).decode("utf-8"))
        except UnicodeDecodeError:
            raise HelloMessageError("board hello is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise HelloMessageError(f"board hello is not JSON ({exc.msg} at char {exc.pos})") from None
        except RecursionError:
            raise HelloMessageError("board hello nests too deeply") from None
        if not isinstance(data, dict):
            raise HelloMessageError(f"board hello must be a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "message"
            got = repr(err.get("input"))[:80]
            raise HelloMessageError(f"board hello: {where!r} {err['msg'].lower()} (got {got}); the board may run "
                                    "another vitfleet version, upgrade it") from None
