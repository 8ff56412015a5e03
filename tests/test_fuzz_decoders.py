"""Hypothesis-driven fuzzing of every decoder a fleet process runs on network or file input.

Each test drives thousands of malformed inputs straight into the pure decoder (fast: no broker in the loop),
counts what happened to every one of them, and fails on any exception other than the decoder's own refusal.
Together they feed well over 10,000 inputs; `test_inputs_add_up_to_ten_thousand` checks the tally.
Malformed-by-construction inputs come from three generators: random bytes, well-formed headers with random
field values (reaching the checks behind the header), and single mutations (truncate, flip, extend) of a valid
message. The message handlers of the aggregator, the camera node and the live view are fed the same way, so the
"counted, never crashes" rule is checked where the messages really land.

One flood through a real broker into a real agent/aggregator is in tests/test_fleet_e2e.py
(test_malformed_floods_on_every_subscribed_topic); a flood into the in-process aggregator is at the end here.
"""

from __future__ import annotations

import json
import random
import struct
import time
from collections import Counter

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitfleet.agent.aggregator import Aggregator
from vitfleet.agent.camera_node import CameraNode
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.protocol import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    NO_PART,
    VERSION,
    FeatureMessage,
    FrameMessage,
    ProtocolError,
    decode_features,
    decode_frame,
    encode_features,
    encode_frame,
    peek_kind,
)
from vitfleet.agent.web.state import WebState
from vitfleet.camera.sources import FrameSource
from vitfleet.fleet_config import BrokerConfig, FleetConfigError, load_fleet, parse_fleet
from vitfleet.hello_message import BoardHello, HelloMessageError
from vitfleet.power_message import PowerMessageError, PowerSnapshot
from vitfleet.topics import OFFLINE, ONLINE, Topics

pytestmark = pytest.mark.timeout(240)

TALLY: Counter[str] = Counter()  # inputs fed per decoder, across this module
# Hypothesis draws the seeds of the malformation; each example is then expanded into VARIANTS cheap derived
# inputs (truncations and byte flips at seeded positions), which keeps 10,000+ inputs fast on a busy machine.
EXAMPLES = 200
VARIANTS = 16
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID_FRAME = encode_frame(
    FrameMessage(
        7, 1_700_000_000_000_000_000, np.arange(28 * 28, dtype=np.uint8).reshape(28, 28, 1), label=3, sent_ns=5
    )
)
VALID_FEATURES = encode_features(FeatureMessage(7, 1, 1, np.linspace(-1, 1, 32).astype(np.float16), 2, 3, 40, 3))

u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
u64, i64 = st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A header that packs, with field values drawn near and far from the legal ones, and a random payload."""
    magic = draw(st.sampled_from([MAGIC, MAGIC, b"VFLX", b"\x00\x00\x00\x00"]))
    version = draw(st.sampled_from([VERSION, VERSION, VERSION + 1, 0, 255]))
    kind = draw(st.sampled_from([1, 2, 0, 3, 255]))
    dtype = draw(st.sampled_from([1, 2, 3, 0, 4, 255]))
    ndim = draw(st.integers(0, 6))
    dims = draw(st.lists(st.sampled_from([0, 1, 3, 28, 32, 8192, 8193, 2**31, 2**32 - 1]), min_size=4, max_size=4))
    part = draw(st.sampled_from([0, 1, 3, NO_PART, 0x7FFF]))
    reserved = draw(st.sampled_from([0, 0, 0, 1]))
    payload = draw(st.binary(max_size=200))
    if draw(st.booleans()):  # payloads that fit the announced shape get past the length checks
        n = 1
        for d in dims[: max(1, min(ndim, 4))]:
            n *= d
        width = 2 if dtype == 2 else 1
        if 0 < n * width <= 4096:
            payload = draw(st.binary(min_size=n * width, max_size=n * width))
    length = draw(st.sampled_from([len(payload), len(payload), len(payload) + 1, 0, 2**32 - 1]))
    header = HEADER.pack(
        magic,
        version,
        kind,
        dtype,
        min(ndim, 255),
        part,
        reserved,
        length,
        draw(u64),
        draw(i64),
        draw(i64),
        draw(i64),
        draw(u32),
        draw(i32),
        *dims,
    )
    return header + payload


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    op = draw(st.sampled_from(["truncate", "flip", "extend", "splice"]))
    if op == "truncate":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if op == "flip":
        pos = draw(st.integers(0, len(valid) - 1))
        return valid[:pos] + bytes([valid[pos] ^ draw(st.integers(1, 255))]) + valid[pos + 1 :]
    if op == "extend":
        return valid + draw(st.binary(min_size=1, max_size=64))
    pos = draw(st.integers(0, HEADER_SIZE - 4))
    return valid[:pos] + struct.pack("<I", draw(u32)) + valid[pos + 4 :]


def binary_inputs(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), structured(), mutated(valid))


def variants(data: bytes, seed: int) -> list[bytes]:
    """`data` and VARIANTS - 1 inputs derived from it: truncated, one byte flipped, or with bytes appended."""
    rng = random.Random(seed)
    out = [data]
    while len(out) < VARIANTS:
        op = rng.randrange(3)
        if op == 0 or not data:
            out.append(data[: rng.randrange(len(data) + 1)] + (b"" if data else bytes([rng.randrange(256)])))
        elif op == 1:
            pos = rng.randrange(len(data))
            out.append(data[:pos] + bytes([data[pos] ^ rng.randrange(1, 256)]) + data[pos + 1 :])
        else:
            out.append(data + rng.randbytes(rng.randrange(1, 9)))
    return out


seeds = st.integers(0, 2**32 - 1)


def _decode(decoder, data: bytes, seen: Counter[str]) -> None:
    try:
        decoder(data)
    except ProtocolError as exc:
        seen[exc.reason] += 1
    else:
        seen["accepted"] += 1


def test_frame_decoder_refuses_malformed_input_with_a_reason() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(binary_inputs(VALID_FRAME), seeds)
    def run(first: bytes, seed: int) -> None:
        for data in variants(first, seed):
            try:
                msg = decode_frame(data)
            except ProtocolError as exc:
                seen[exc.reason] += 1
                continue
            seen["accepted"] += 1
            # Whatever is accepted is internally consistent: the image is what the header announced.
            h, w, c = struct.unpack_from("<4I", data, HEADER_SIZE - 16)[:3]
            assert msg.image.dtype == np.uint8 and msg.image.shape == (h, w, c) and c in (1, 3)

    run()
    TALLY["frame"] += sum(seen.values())
    assert sum(seen.values()) >= EXAMPLES * VARIANTS
    refused = sum(v for k, v in seen.items() if k != "accepted")
    assert refused >= 0.8 * EXAMPLES * VARIANTS, seen  # the generators really produce malformed input, not valid frames
    assert {"short", "magic", "version", "length", "shape"} <= set(seen), seen


def test_feature_decoder_refuses_malformed_input_with_a_reason() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(binary_inputs(VALID_FEATURES), st.sampled_from([None, 32, 16]), seeds)
    def run(first: bytes, dim: int | None, seed: int) -> None:
        for data in variants(first, seed):
            try:
                msg = decode_features(data, expected_dim=dim)
            except ProtocolError as exc:
                seen[exc.reason] += 1
                continue
            seen["accepted"] += 1
            assert msg.features.dtype == np.float16 and np.isfinite(msg.features).all() and msg.part != NO_PART
            assert dim is None or msg.features.shape == (dim,)

    run()
    TALLY["features"] += sum(seen.values())
    assert sum(seen.values()) >= EXAMPLES * VARIANTS
    assert sum(v for k, v in seen.items() if k != "accepted") >= 0.8 * EXAMPLES * VARIANTS, seen
    assert {"short", "magic", "length", "shape"} <= set(seen), seen


def test_header_peek_refuses_malformed_input() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(st.one_of(binary_inputs(VALID_FRAME), binary_inputs(VALID_FEATURES)), seeds)
    def run(first: bytes, seed: int) -> None:
        for data in variants(first, seed):
            _decode(peek_kind, data, seen)

    run()
    TALLY["peek"] += sum(seen.values())
    assert sum(seen.values()) >= EXAMPLES * VARIANTS and seen["accepted"] < sum(seen.values()) / 2, seen


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_values = st.one_of(
    json_leaf, st.lists(json_leaf, max_size=3), st.dictionaries(st.text(max_size=6), json_leaf, max_size=3)
)
POWER_KEYS = ["ts", "watts", "joules", "frames", "source", "estimated"]


@st.composite
def power_payloads(draw: st.DrawFn) -> bytes:
    base = {"ts": 1.7e9, "watts": 4.5, "joules": 10.0, "frames": 3, "source": "rapl", "estimated": False}
    op = draw(st.sampled_from(["bytes", "value", "drop", "extra", "nest", "constant"]))
    if op == "bytes":
        return draw(st.binary(max_size=1100))
    if op == "value":
        base[draw(st.sampled_from(POWER_KEYS))] = draw(json_values)
    elif op == "drop":
        del base[draw(st.sampled_from(POWER_KEYS))]
    elif op == "extra":
        base[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in POWER_KEYS))] = draw(json_values)
    elif op == "nest":
        return b"[" * draw(st.integers(100, 1000)) + b"]" * draw(st.integers(0, 5))
    else:
        return json.dumps(base).replace("4.5", draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))).encode()
    return json.dumps(base, allow_nan=True).encode()


def test_power_decoder_refuses_malformed_input() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(power_payloads(), seeds)
    def run(first: bytes, seed: int) -> None:
        for payload in variants(first, seed):
            try:
                snap = PowerSnapshot.from_json(payload)
            except PowerMessageError as exc:
                assert str(exc).startswith("power message"), exc
                seen["refused"] += 1
                continue
            seen["accepted"] += 1
            assert np.isfinite([snap.ts, snap.watts, snap.joules]).all() and snap.watts >= 0

    run()
    TALLY["power"] += sum(seen.values())
    assert sum(seen.values()) >= EXAMPLES * VARIANTS and seen["refused"] >= 0.8 * EXAMPLES * VARIANTS, seen


VALID_HELLO = {
    "v": 1,
    "board": "pi-7",
    "kind": "pi5",
    "arch": "aarch64",
    "cores": 4,
    "memory_mb": 8064,
    "speed": 12.5,
    "host": "10.0.0.7",
    "bundle_id": "b1",
    "parts": [1],
    "engines": ["part1.int8.onnx"],
    "ts": 1.7e9,
}


@st.composite
def hello_payloads(draw: st.DrawFn) -> bytes:
    base = dict(VALID_HELLO)
    op = draw(st.sampled_from(["bytes", "value", "drop", "extra", "nest", "mutate"]))
    if op == "bytes":
        return draw(st.binary(max_size=600))
    if op == "value":
        base[draw(st.sampled_from(sorted(VALID_HELLO)))] = draw(json_values)
    elif op == "drop":
        del base[draw(st.sampled_from(["board", "kind", "arch", "cores", "memory_mb", "ts"]))]
    elif op == "extra":
        base[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in VALID_HELLO))] = draw(json_values)
    elif op == "nest":
        return b"[" * draw(st.integers(100, 3000)) + b"]" * draw(st.integers(0, 5))
    else:
        return draw(binary_inputs(json.dumps(base).encode()))
    return json.dumps(base, allow_nan=True).encode()


def test_hello_decoder_refuses_malformed_input_with_one_sentence() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(hello_payloads(), seeds)
    def run(first: bytes, seed: int) -> None:
        for payload in variants(first, seed):
            try:
                hello = BoardHello.from_json(payload)
            except HelloMessageError as exc:
                text = str(exc)
                assert text.startswith("board hello") and "\n" not in text and len(text) <= 300, text
                seen["refused"] += 1
                continue
            seen["accepted"] += 1
            assert hello.cores > 0 and hello.memory_mb > 0 and hello.board

    run()
    assert BoardHello.from_json(json.dumps(VALID_HELLO).encode()).board == "pi-7"
    TALLY["hello"] += sum(seen.values())
    assert sum(seen.values()) >= EXAMPLES * VARIANTS and seen["refused"] >= 0.8 * EXAMPLES * VARIANTS, seen


# ---- fleet.yaml ------------------------------------------------------------------------------------------------
def valid_fleet() -> dict:
    return {
        "name": "fz",
        "broker": {"host": "127.0.0.1", "port": 1883},
        "boards": [
            {"name": "a", "part": 0},
            {"name": "b", "part": 1},
            {"name": "hub", "roles": ["aggregator", "camera"]},
        ],
        "camera": {"uri": "synthetic://", "fps": 10.0},
        "aggregator": {"deadline_ms": 200.0},
    }


# Keys with a type or range, and the dotted name the error must start with (pydantic may point deeper, e.g. at
# one item of a list).
TYPED_KEYS = [
    ("broker", "port"),
    ("broker", "keepalive"),
    ("broker", "host"),
    ("camera", "fps"),
    ("camera", "encoding"),
    ("camera", "loop"),
    ("aggregator", "deadline_ms"),
    ("aggregator", "max_pending"),
    ("name",),
    ("boards", 0, "part"),
    ("boards", 1, "kind"),
    ("boards", 2, "roles"),
    ("boards", 0, "memory_mb"),
    ("boards", 1, "speed"),
    ("boards", 0, "name"),
    ("boards",),
]
WRONG_VALUES = st.one_of(
    st.sampled_from(["not-a-port", 70000, -5, 0, "pi3", ["chef"], "has space", [], {}, None]), json_values
)
SECTIONS = [(), ("broker",), ("camera",), ("aggregator",), ("boards", 0), ("boards", 2)]


def _at(data: dict, path: tuple) -> dict:
    for step in path:
        data = data[step]
    return data


@st.composite
def broken_fleets(draw: st.DrawFn) -> tuple[dict, str]:
    """(fleet dict with one wrong key or one wrong-typed value, the dotted key the error must name)."""
    data = valid_fleet()
    if draw(st.booleans()):
        section = draw(st.sampled_from(SECTIONS))
        key = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=2, max_size=12))
        target = _at(data, section)
        if key in target or key in {
            "name",
            "bundle",
            "engines",
            "broker",
            "boards",
            "camera",
            "aggregator",
            "host",
            "port",
            "tls",
            "username",
            "password_env",
            "password_file",
            "keepalive",
            "kind",
            "memory_mb",
            "speed",
            "roles",
            "part",
            "precision",
            "ssh_user",
            "ssh_port",
            "install_dir",
            "threads",
            "python",
            "service_manager",
            "uri",
            "fps",
            "loop",
            "encoding",
            "deadline_ms",
            "max_pending",
            "log",
        }:
            key = key + "_x"
        target[key] = draw(json_values)
        return data, ".".join(map(str, (*section, key)))
    path = draw(st.sampled_from(TYPED_KEYS))
    _at(data, path[:-1])[path[-1]] = draw(WRONG_VALUES)
    return data, ".".join(map(str, path))


def test_fleet_config_errors_name_the_key() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=600, deadline=None, database=None, derandomize=True)
    @given(broken_fleets())
    def run(case: tuple[dict, str]) -> None:
        data, dotted = case
        try:
            parse_fleet(data, "fleet.yaml")
        except FleetConfigError as exc:
            message = str(exc)
        else:
            seen["valid value"] += 1  # the drawn value happened to be legal (e.g. a port in range)
            return
        # One line, naming the broken key (or an item below it).
        assert f"'{dotted}" in message and "\n" not in message, (dotted, message)
        seen["unknown key" if "unknown key" in message else "wrong type"] += 1

    run()
    TALLY["fleet.yaml"] += sum(seen.values())
    assert seen["unknown key"] >= 200 and seen["wrong type"] >= 200, seen


def test_fleet_config_wrong_key_and_type_messages_are_one_clear_line(tmp_path) -> None:
    bad = valid_fleet()
    bad["broker"]["prot"] = 1883
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(FleetConfigError, match=r"unknown key 'broker\.prot'; remove it or fix its spelling"):
        load_fleet(path)
    bad = valid_fleet()
    bad["boards"][1]["part"] = "one"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(FleetConfigError, match=r"key 'boards\.1\.part'.*got 'one'"):
        load_fleet(path)


def test_random_yaml_text_only_ever_gives_a_fleet_config_error(tmp_path) -> None:
    seen: Counter[str] = Counter()
    path = tmp_path / "fleet.yaml"

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        st.one_of(
            st.text(max_size=200),
            st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
            json_values.map(yaml.safe_dump),
        )
    )
    def run(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_fleet(path)
        except FleetConfigError:
            seen["refused"] += 1
        else:
            seen["accepted"] += 1

    run()
    TALLY["fleet.yaml"] += sum(seen.values())
    assert seen["refused"] >= 270, seen  # a random text is almost never a fleet with a boards list


# ---- the message handlers where messages land ------------------------------------------------------------------
class _ZeroFusion:
    def fuse(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.zeros((1, 10), np.float32)


class _NoFrames(FrameSource):
    def read(self):
        return None


BROKER = BrokerConfig(host="127.0.0.1", port=1)  # the handlers are called directly; nothing connects


def _close(link: MqttLink) -> None:
    link.client.loop_stop()


def test_aggregator_handler_counts_every_malformed_message() -> None:
    topics = Topics("fz")
    agg = Aggregator(BROKER, "fz", "agg", _ZeroFusion(), [32, 32], [str(i) for i in range(10)])
    topic_choices = [
        topics.features(0),
        topics.features(1),
        topics.features(2),
        topics.features(99999),
        "vitfleet/fz/features/x",
        topics.power("b"),
        topics.available("b"),
        topics.stats("b"),
        "vitfleet/fz/boards//power",
        "vitfleet/fz/other",
    ]
    fed = Counter()

    def valid_for(topic: str, payload: bytes) -> bool:
        """What the aggregator should accept, decided by the decoders themselves (tested above)."""
        part = topics.part_of(topic)
        if part is not None:
            try:
                return part < 2 and decode_features(payload, expected_dim=32).part == part
            except ProtocolError:
                return False
        if topic == topics.power("b"):
            try:
                PowerSnapshot.from_json(payload)
                return True
            except PowerMessageError:
                return False
        return topic == topics.available("b") and payload in (ONLINE, OFFLINE)

    @FUZZ
    @given(
        st.sampled_from(topic_choices),
        st.one_of(
            binary_inputs(VALID_FEATURES),
            power_payloads(),
            st.binary(max_size=50),
            st.sampled_from([ONLINE, OFFLINE, b"maybe"]),
        ),
        seeds,
    )
    def run(topic: str, first: bytes, seed: int) -> None:
        for payload in variants(first, seed):
            before = agg.malformed.total
            agg._on_message(topic, payload)
            fed["messages"] += 1
            counted = agg.malformed.total - before
            # Exactly the messages the decoders refuse are counted as malformed, one count each.
            assert counted == (0 if valid_for(topic, payload) else 1), (topic, payload[:80])

    try:
        run()
    finally:
        _close(agg.link)
    TALLY["aggregator"] += fed["messages"]
    assert agg.malformed.total >= 1000 and agg.link.callback_errors == 0, agg.malformed.by_reason()


def test_camera_node_and_view_count_malformed_predictions() -> None:
    topics = Topics("fz")
    node = CameraNode(BROKER, "fz", "cam", _NoFrames())
    view = WebState(BROKER, "fz")
    prediction = {
        "frame_id": 1,
        "camera": "cam0",
        "class_id": 2,
        "capture_ns": 3,
        "degraded": False,
        "parts": [],
        "fusion_ms": 0.1,
        "fused_ns": 4,
    }
    payloads = st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda k, v: json.dumps({**prediction, k: v}).encode(), st.sampled_from(sorted(prediction)), json_values
        ),
        st.integers(1000, 50000).map(lambda n: b"[" * n),  # nesting deeper than json's recursion limit
        st.integers(1000, 20000).map(lambda n: b'{"a":' * n),
    )
    fed = Counter()

    @FUZZ
    @given(payloads, seeds)
    def run(first: bytes, seed: int) -> None:
        for payload in variants(first, seed):
            before = node.malformed.total + node.counts["unmatched"] + node.counts["predictions"]
            node._on_message(topics.predictions("cam0"), payload)
            view._on_message(topics.predictions("cam0"), payload)
            fed["messages"] += 1
            # Counted once: malformed, or a well-formed prediction for a frame this node never sent.
            assert node.malformed.total + node.counts["unmatched"] + node.counts["predictions"] == before + 1

    try:
        run()
    finally:
        _close(node.link)
        _close(view.link)
    TALLY["camera+view"] += fed["messages"]
    assert node.malformed.total >= 1000, node.malformed.by_reason()


# ---- the same garbage through a real broker into a real aggregator -----------------------------------------


def test_flood_through_the_broker_is_counted_by_the_aggregator(broker) -> None:
    topics = Topics("fz")
    agg = Aggregator(broker.config, "fz", "agg", _ZeroFusion(), [32, 32], [str(i) for i in range(10)]).start()
    spam = MqttLink(broker.config, "fz", "test", "spam", lambda t, p: None).start()
    try:
        rng = np.random.default_rng(9)
        infos = []
        for i in range(2000):
            valid = VALID_FEATURES if i % 2 else VALID_FRAME
            pos = int(rng.integers(0, len(valid)))
            payload = valid[:pos] if i % 3 == 0 else valid[:pos] + bytes([valid[pos] ^ 0x5A]) + valid[pos + 1 :]
            infos.append(spam.publish(topics.features(i % 2), payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=10)
        # Each message is either refused and counted, or decoded as a part of some frame (a flip can land in
        # a field the protocol does not validate: timestamps, frame id); none is lost, none escapes a callback.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and agg.malformed.total + agg.hop_ms.count < 2000:
            time.sleep(0.05)
        assert agg.malformed.total + agg.hop_ms.count == 2000, (agg.malformed.by_reason(), agg.hop_ms.count)
        assert agg.malformed.total >= 1200 and agg.link.callback_errors == 0, agg.malformed.by_reason()
    finally:
        spam.stop()
        agg.stop()
    TALLY["broker flood"] += 2000


def test_inputs_add_up_to_ten_thousand() -> None:
    """Runs last in this module (pytest keeps file order): the tally of every input fed above."""
    if len(TALLY) < 8:
        pytest.skip(f"only part of the module ran ({dict(TALLY)}); the tally needs all fuzz tests")
    assert sum(TALLY.values()) >= 10_000, dict(TALLY)
    print(f"fuzz inputs per decoder: {dict(TALLY)}; total {sum(TALLY.values())}")
