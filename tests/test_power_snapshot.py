"""The boards/<board>/power message: round trip, and a clear PowerMessageError for anything malformed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitfleet.power_message import PowerMessageError, PowerSnapshot

GOOD = PowerSnapshot(
    ts=1_732_380_000.125, watts=4.81, joules=1234.5, frames=9876, source="ina3221-hwmon:VDD_IN", estimated=False
)


def _payload(**changes: object) -> bytes:
    data = json.loads(GOOD.to_json())
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not _DROP}).encode()


_DROP = object()


def test_round_trip_and_wire_shape() -> None:
    wire = GOOD.to_json()
    assert json.loads(wire) == {
        "ts": 1_732_380_000.125,
        "watts": 4.81,
        "joules": 1234.5,
        "frames": 9876,
        "source": "ina3221-hwmon:VDD_IN",
        "estimated": False,
    }
    assert PowerSnapshot.from_json(wire) == GOOD
    assert PowerSnapshot.from_json(bytearray(wire)) == GOOD
    assert PowerSnapshot.from_json(_payload(watts=0, ts=1_732_380_000)).watts == 0.0  # ints are numbers too


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"ts": 1,', "not JSON"),
        (b"[1, 2, 3]", "must be a JSON object, got list"),
        (b"null", "must be a JSON object, got NoneType"),
        ("{}", "must be bytes, got str"),
        (b"{}", "'ts' field required"),
        (_payload(watts=_DROP), "'watts' field required"),
        (_payload(volts=5.0), "'volts' extra inputs are not permitted"),
        (_payload(watts="4.8"), "'watts' input should be a valid number"),
        (_payload(watts=True), "'watts' input should be a valid number"),
        (_payload(watts=-0.5), "'watts' input should be greater than or equal to 0"),
        (_payload(watts=1e9), "'watts' input should be less than or equal to 100000"),
        (b'{"ts": 1, "watts": NaN, "joules": 0, "frames": 0, "source": "x", "estimated": false}', "contains NaN"),
        (
            b'{"ts": 1, "watts": Infinity, "joules": 0, "frames": 0, "source": "x", "estimated": false}',
            "contains Infinity",
        ),
        (
            b'{"ts": 1, "watts": 1e400, "joules": 0, "frames": 0, "source": "x", "estimated": false}',
            "should be a finite number",
        ),
        (_payload(joules=-1), "'joules' input should be greater than or equal to 0"),
        (_payload(ts=0), "'ts' input should be greater than 0"),
        (_payload(frames=1.5), "'frames' input should be a valid integer"),
        (_payload(frames=-3), "'frames' input should be greater than or equal to 0"),
        (_payload(frames=False), "'frames' input should be a valid integer"),
        (_payload(frames=2**60), "'frames' input should be less than or equal to"),
        (_payload(source=""), "'source' string should have at least 1 character"),
        (_payload(source=7), "'source' input should be a valid string"),
        (_payload(source="a\nb"), "'source' string should match pattern"),
        (_payload(estimated="no"), "'estimated' input should be a valid boolean"),
        (_payload(estimated=0), "'estimated' input should be a valid boolean"),
        (
            b'{"ts": 1, "ts": 2, "watts": 1, "joules": 0, "frames": 0, "source": "x", "estimated": false}',
            "repeats key\\(s\\) ts",
        ),
        (_payload(source="x" * 2000), "over the 1024-byte limit"),
        (b"[" * 100_000, "over the 1024-byte limit"),
        (b"[" * 1000 + b"]" * 1000, "over the 1024-byte limit"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PowerMessageError, match=reason):
        PowerSnapshot.from_json(payload)


def test_nested_arrays_within_the_size_limit_are_refused() -> None:
    with pytest.raises(PowerMessageError, match="must be a JSON object, got list"):
        PowerSnapshot.from_json(b"[" * 500 + b"]" * 500)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_no_byte_string_crashes_the_parser(payload: bytes) -> None:
    try:
        snap = PowerSnapshot.from_json(payload)
    except PowerMessageError as exc:
        assert str(exc)
    else:
        assert PowerSnapshot.from_json(snap.to_json()) == snap


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["ts", "watts", "joules", "frames", "source", "estimated", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=30),
            st.lists(st.integers(), max_size=3),
        ),
        max_size=7,
    )
)
def test_any_json_object_is_accepted_or_refused_cleanly(data: dict[str, object]) -> None:
    try:
        payload = json.dumps(data).encode()
        snap = PowerSnapshot.from_json(payload)
    except PowerMessageError:
        return
    assert snap.watts >= 0 and snap.frames >= 0 and isinstance(snap.estimated, bool)
