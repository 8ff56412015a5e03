"""The boards/<board>/power message: one JSON object per second per board.

{"ts": 1732380000.12, "watts": 4.81, "joules": 1234.5, "frames": 9876, "source": "rapl",
 "estimated": false}

ts is the publisher's time.time(); watts the latest sample; joules and frames count from the
sampler's start. from_json refuses anything else with a PowerMessageError that says what is
wrong, so the aggregator can count and log it without crashing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

MAX_POWER_MESSAGE_BYTES = 1024
MAX_WATTS = 100_000.0  # no single board draws 100 kW; larger values are garbage
MAX_SOURCE_CHARS = 80
MAX_FRAMES = 2**53  # beyond this a JSON number stops being an exact integer for most readers
_KEYS = ("ts", "watts", "joules", "frames", "source", "estimated")


class PowerMessageError(ValueError):
    """A power message that is not a valid PowerSnapshot; str(error) says why."""


@dataclass(frozen=True)
class PowerSnapshot:
    ts: float
    watts: float
    joules: float
    frames: int
    source: str
    estimated: bool

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> "PowerSnapshot":
        return cls(**_validated(_decode(payload)))


def _reject_constant(name: str) -> Any:
    raise PowerMessageError(f"power message contains {name}, which is not a number JSON allows")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise PowerMessageError(f"power message repeats key(s) {', '.join(dupes)}")
    return dict(pairs)


def _decode(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise PowerMessageError(f"power message must be bytes, got {type(payload).__name__}")
    if len(payload) > MAX_POWER_MESSAGE_BYTES:
        raise PowerMessageError(f"power message is {len(payload)} bytes, over the {MAX_POWER_MESSAGE_BYTES}-byte "
                                "limit")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise PowerMessageError("power message is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise PowerMessageError(f"power message is not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise PowerMessageError("power message nests too deeply") from None
    if not isinstance(data, dict):
        raise PowerMessageError(f"power message must be a JSON object, got {type(data).__name__}")
    return data


def _number(data: dict[str, Any], key: str, low: float, high: float) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PowerMessageError(f"power message key {key!r} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise PowerMessageError(f"power message key {key!r} is {value}, not a finite number")
    if not low <= value <= high:
        raise PowerMessageError(f"power message key {key!r} is {value}, outside [{low:g}, {high:g}]")
    return value


def _validated(data: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise PowerMessageError(f"power message lacks key(s) {', '.join(missing)}")
    extra = sorted(k for k in data if k not in _KEYS)
    if extra:
        raise PowerMessageError(f"power message has unknown key(s) {', '.join(extra)}")
    frames, source, estimated = data["frames"], data["source"], data["estimated"]
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= MAX_FRAMES:
        raise PowerMessageError(f"power message key 'frames' must be an integer in [0, 2**53], got {frames!r}"[:160])
    if not isinstance(source, str) or not source or len(source) > MAX_SOURCE_CHARS or not source.isprintable():
        raise PowerMessageError(f"power message key 'source' must be a printable string of 1-{MAX_SOURCE_CHARS} "
                                f"characters, got {source!r}"[:160])
    if not isinstance(estimated, bool):
        raise PowerMessageError(f"power message key 'estimated' must be true or false, got {estimated!r}"[:160])
    return {
        "ts": _number(data, "ts", 1e-9, 1e11),  # time.time(): after 1970, before year 5138
        "watts": _number(data, "watts", 0.0, MAX_WATTS),
        "joules": _number(data, "joules", 0.0, 1e15),
        "frames": frames,
        "source": source,
        "estimated": estimated,
    }
