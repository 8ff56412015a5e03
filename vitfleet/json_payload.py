"""Decoding one JSON object from a message payload, with errors that name the message and say what is wrong.

The checks pydantic cannot make (size, text encoding, JSON syntax, NaN literals, repeated keys, nesting, not an
object), shared by the JSON wire messages whose decoders must refuse garbage in one sentence (the power snapshot,
the board hello).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError


def decode_json_object(payload: Any, what: str, error: type[ValueError], max_bytes: int) -> dict[str, Any]:
    """The JSON object in `payload`; `error("<what> ...")` for anything else."""

    def reject_constant(name: str) -> Any:
        raise error(f"{what} contains {name}, which is not a number JSON allows")

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise error(f"{what} repeats key(s) {', '.join(dupes)}")
        return dict(pairs)

    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise error(f"{what} must be bytes, got {type(payload).__name__}")
    if len(payload) > max_bytes:
        raise error(f"{what} is {len(payload)} bytes, over the {max_bytes}-byte limit")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise error(f"{what} nests too deeply") from None
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def first_error(exc: ValidationError) -> str:
    """pydantic's first complaint as `'field' what is wrong (got value)`, at most 200 characters."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where!r} {err['msg'].lower()} (got {err.get('input')!r})"[:200]
