"""The wire protocol: round trips, and every malformed message refused with a reason (never another error)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitfleet.agent.protocol import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    NO_LABEL,
    VERSION,
    DType,
    FeatureMessage,
    FrameMessage,
    Kind,
    ProtocolError,
    decode_features,
    decode_frame,
    encode_features,
    encode_frame,
)


def _frame(shape=(28, 28, 1), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _features(dim=32) -> FeatureMessage:
    vec = np.linspace(-3, 3, dim).astype(np.float32)
    return FeatureMessage(7, 123_456_789, 1, vec, 200, 300, 1500, 4)


def test_header_is_72_bytes_little_endian():
    assert HEADER_SIZE == 72
    data = encode_frame(FrameMessage(0x0102030405060708, 99, _frame(), 3))
    assert data[:4] == MAGIC and data[4] == VERSION and data[5] == Kind.FRAME and data[6] == DType.UINT8
    assert data[16:24] == bytes([8, 7, 6, 5, 4, 3, 2, 1])  # frame id, little-endian at offset 16


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 48, 3), (1, 1, 1)])
def test_raw_frame_round_trip_is_exact(shape):
    image = _frame(shape)
    msg = decode_frame(encode_frame(FrameMessage(42, 10**18, image, 5, 11)))
    assert msg.frame_id == 42 and msg.capture_ns == 10**18 and msg.label == 5 and msg.sent_ns == 11
    assert msg.image.dtype == np.uint8 and np.array_equal(msg.image, image)


def test_frames_and_features_carry_their_camera_and_a_version_1_message_is_camera_0():
    frame = decode_frame(encode_frame(FrameMessage(5, 6, _frame(), 1, 0, camera=3)))
    assert frame.camera == 3
    feats = decode_features(encode_features(FeatureMessage(5, 6, 0, np.ones(4), 0, 0, 0, camera=513)))
    assert feats.camera == 513
    old = _with(encode_frame(FrameMessage(5, 6, _frame())), 4, "<B", 1)  # what a version-1 camera node sent
    assert decode_frame(old).camera == 0 and decode_frame(old).frame_id == 5
    with pytest.raises(ValueError, match="camera index"):
        encode_frame(FrameMessage(5, 6, _frame(), camera=0x10000))


def test_2d_frame_is_sent_as_one_channel():
    msg = decode_frame(encode_frame(FrameMessage(1, 2, _frame((5, 6, 1))[..., 0])))
    assert msg.image.shape == (5, 6, 1) and msg.label == NO_LABEL


def test_jpeg_frame_round_trip_is_close():
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([(xx * 4) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], axis=2).astype(np.uint8)
    data = encode_frame(FrameMessage(3, 4, image), encoding="jpeg")
    assert data[6] == DType.JPEG and len(data) < HEADER_SIZE + image.size
    msg = decode_frame(data)
    assert msg.image.shape == image.shape
    assert np.abs(msg.image.astype(int) - image).mean() < 4


def test_features_round_trip_as_float16():
    src = _features()
    msg = decode_features(encode_features(src), expected_dim=32)
    assert msg.features.dtype == np.float16
    assert np.allclose(msg.features, src.features, atol=2e-3)
    assert (msg.frame_id, msg.capture_ns, msg.part, msg.recv_ns, msg.sent_ns, msg.infer_us, msg.label) == (
        7,
        123_456_789,
        1,
        200,
        300,
        1500,
        4,
    )


def _with(data: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


FRAME = encode_frame(FrameMessage(1, 2, _frame()))
FEAT = encode_features(_features())

MALFORMED = [
    ("short", b"", decode_frame),
    ("short", FRAME[: HEADER_SIZE - 1], decode_frame),
    ("magic", b"XXXX" + FRAME[4:], decode_frame),
    ("version", _with(FRAME, 4, "<B", VERSION + 1), decode_frame),
    ("kind", _with(FRAME, 5, "<B", 9), decode_frame),
    ("kind", FEAT, decode_frame),
    ("kind", FRAME, decode_features),
    ("dtype", _with(FRAME, 6, "<B", DType.FLOAT16), decode_frame),
    ("dtype", _with(FEAT, 6, "<B", DType.UINT8), decode_features),
    ("shape", _with(FRAME, 7, "<B", 0), decode_frame),
    ("shape", _with(FRAME, 7, "<B", 5), decode_frame),
    ("shape", _with(FRAME, 7, "<B", 2), decode_frame),  # dims after ndim must be zero
    ("part", _with(FRAME, 8, "<H", 0), decode_frame),
    ("part", _with(FEAT, 8, "<H", 0xFFFF), decode_features),
    ("reserved", _with(_with(FRAME, 4, "<B", 1), 10, "<H", 1), decode_frame),  # version 1 had no camera field
    ("length", _with(FRAME, 12, "<I", 10), decode_frame),
    ("length", FRAME + b"\0", decode_frame),
    ("length", FRAME[:-1], decode_frame),
    ("length", _with(FRAME, 56, "<I", 27), decode_frame),  # H no longer matches the payload
    ("shape", _with(FRAME, 64, "<I", 2), decode_frame),  # 2 channels
    ("shape", _with(FRAME, 56, "<I", 100_000), decode_frame),  # absurd side, refused before allocating
    ("length", _with(FEAT, 56, "<I", 31), decode_features),
    ("shape", _with(FEAT, 56, "<I", 0), decode_features),
    ("jpeg", _with(_with(FRAME, 6, "<B", DType.JPEG), 0, "<4s", MAGIC), decode_frame),
    (
        "nonfinite",
        encode_features(FeatureMessage(1, 2, 0, np.array([1.0, np.inf], np.float32), 0, 0, 0)),
        decode_features,
    ),
]


@pytest.mark.parametrize("reason,data,decoder", MALFORMED, ids=[f"{i}-{m[0]}" for i, m in enumerate(MALFORMED)])
def test_malformed_messages_are_refused_with_their_reason(reason, data, decoder):
    with pytest.raises(ProtocolError) as err:
        decoder(data)
    assert err.value.reason == reason


def test_feature_dimension_is_checked_against_the_part():
    with pytest.raises(ProtocolError, match="part 1 sends 64 features"):
        decode_features(FEAT, expected_dim=64)


def test_header_fields_pack_with_the_documented_format():
    assert HEADER.format == "<4sBBBBHHIQqqqIi4I"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_protocol_error(data):
    for decoder in (decode_frame, decode_features):
        with pytest.raises(ProtocolError):
            decoder(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(FRAME) - 1), st.integers(0, 255))
def test_single_byte_corruption_never_escapes_as_another_error(pos, value):
    data = bytearray(FRAME)
    data[pos] = value
    try:
        msg = decode_frame(bytes(data))
    except ProtocolError:
        return
    assert msg.image.shape == (28, 28, 1)  # a corruption that still decodes is a well-formed frame
