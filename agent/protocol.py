"""The binary wire format of frame and feature messages (docs/protocol.md describes it byte by byte).

A fixed 72-byte little-endian header, then the payload. Version 2 names the camera a frame came from (the
fleet's several cameras share one frames topic); version 1 had a reserved zero there, so a version-1 message is
read as camera 0 (the one camera such a fleet had). Decoding validates every
field against the payload before touching it, and raises ProtocolError (a
ValueError with a short `reason` used as a counter key) for anything malformed;
callers count and drop such messages, they never let it escape a callback.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

MAGIC = b"VFLT"
VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER = struct.Struct("<4sBBBBHHIQqqqIi4I")
HEADER_SIZE = HEADER.size  # 72
NO_PART = 0xFFFF
NO_LABEL = -1
MAX_SIDE = 8192  # a frame side above this is refused before allocating anything
MAX_FEATURE_DIM = 65536
MAX_CAMERA = 0xFFFF


class Kind(IntEnum):
    FRAME = 1
    FEATURES = 2


class DType(IntEnum):
    UINT8 = 1  # raw pixels, shape (H, W, C)
    FLOAT16 = 2  # feature vector, shape (D,)
    JPEG = 3  # JPEG bytes; the shape is the decoded (H, W, C)


class ProtocolError(ValueError):
    """A message that does not follow docs/protocol.md; `reason` names the broken rule."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class FrameMessage:
    frame_id: int
    capture_ns: int  # camera clock, time.time_ns()
    image: np.ndarray  # uint8 (H, W, C)
    label: int = NO_LABEL  # ground truth when the source knows it (dataset replays)
    sent_ns: int = 0
    camera: int = 0  # index of the camera in the fleet's `cameras` (fleet_config.camera_feeds)


@dataclass(frozen=True)
class FeatureMessage:
    frame_id: int
    capture_ns: int
    part: int
    features: np.ndarray  # float16 (D,)
    recv_ns: int  # when the agent received the frame (agent clock)
    sent_ns: int  # when the agent published this message
    infer_us: int  # engine time for this frame
    label: int = NO_LABEL
    camera: int = 0  # the frame's camera, copied from the frame message


def _pack(
    kind: Kind,
    dtype: DType,
    shape: tuple[int, ...],
    payload: bytes,
    frame_id: int,
    capture_ns: int,
    part: int,
    recv_ns: int,
    sent_ns: int,
    infer_us: int,
    label: int,
    camera: int,
) -> bytes:
    if not 0 <= camera <= MAX_CAMERA:
        raise ValueError(f"camera index {camera} is outside 0..{MAX_CAMERA}")
    dims = tuple(shape) + (0,) * (4 - len(shape))
    header = HEADER.pack(
        MAGIC,
        VERSION,
        kind,
        dtype,
        len(shape),
        part,
        camera,
        len(payload),
        frame_id,
        capture_ns,
        recv_ns,
        sent_ns,
        min(infer_us, 0xFFFFFFFF),
        label,
        *dims,
    )
    return header + payload


def encode_frame(msg: FrameMessage, encoding: str = "raw", jpeg_quality: int = 90) -> bytes:
    image = msg.image
    if image.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"frames must be (H, W, 1|3), got {image.shape}")
    if encoding == "raw":
        payload, dtype = np.ascontiguousarray(image).tobytes(), DType.UINT8
    elif encoding == "jpeg":
        import cv2

        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError("OpenCV could not JPEG-encode the frame")
        payload, dtype = buf.tobytes(), DType.JPEG
    else:
        raise ValueError(f"unknown frame encoding {encoding!r}; use raw or jpeg")
    return _pack(
        Kind.FRAME,
        dtype,
        image.shape,
        payload,
        msg.frame_id,
        msg.capture_ns,
        NO_PART,
        0,
        msg.sent_ns,
        0,
        msg.label,
        msg.camera,
    )


def encode_features(msg: FeatureMessage) -> bytes:
    vec = np.ascontiguousarray(msg.features, dtype=np.float16).reshape(-1)
    return _pack(
        Kind.FEATURES,
        DType.FLOAT16,
        vec.shape,
        vec.tobytes(),
        msg.frame_id,
        msg.capture_ns,
        msg.part,
        msg.recv_ns,
        msg.sent_ns,
        msg.infer_us,
        msg.label,
        msg.camera,
    )


@dataclass(frozen=True)
class _Header:
    kind: int
    dtype: int
    shape: tuple[int, ...]
    part: int
    frame_id: int
    capture_ns: int
    recv_ns: int
    sent_ns: int
    infer_us: int
    label: int
    camera: int


def _parse_header(data: bytes) -> tuple[_Header, memoryview]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("type", f"payload must be bytes, got {type(data).__name__}")
    if len(data) < HEADER_SIZE:
        raise ProtocolError("short", f"{len(data)} bytes, the header alone is {HEADER_SIZE}")
    (
        magic,
        version,
        kind,
        dtype,
        ndim,
        part,
        camera,
        payload_len,
        frame_id,
        capture_ns,
        recv_ns,
        sent_ns,
        infer_us,
        label,
        *dims,
    ) = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError("magic", f"magic {magic!r}, expected {MAGIC!r}")
    if version not in READABLE_VERSIONS:
        raise ProtocolError(
            "version",
            f"protocol version {version}, this build reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; upgrade vitfleet on every "
            "board together",
        )
    if kind not in (Kind.FRAME, Kind.FEATURES):
        raise ProtocolError("kind", f"unknown message kind {kind}")
    if version == 1 and camera != 0:
        raise ProtocolError("reserved", f"reserved field is {camera}, must be 0 in version 1")
    if not 1 <= ndim <= 4 or any(d != 0 for d in dims[ndim:]):
        raise ProtocolError("shape", f"ndim {ndim} with dims {dims}")
    if payload_len != len(data) - HEADER_SIZE:
        raise ProtocolError(
            "length", f"header announces {payload_len} payload bytes, message carries {len(data) - HEADER_SIZE}"
        )
    header = _Header(
        kind, dtype, tuple(dims[:ndim]), part, frame_id, capture_ns, recv_ns, sent_ns, infer_us, label, camera
    )
    return header, memoryview(data)[HEADER_SIZE:]


def peek_kind(data: bytes) -> Kind:
    """Validate only the header; used to route without decoding a payload."""
    return Kind(_parse_header(data)[0].kind)


def decode_frame(data: bytes) -> FrameMessage:
    h, payload = _parse_header(data)
    if h.kind != Kind.FRAME:
        raise ProtocolError("kind", f"expected a frame message, got kind {h.kind}")
    if h.part != NO_PART:
        raise ProtocolError("part", f"frame messages carry part {NO_PART:#x}, got {h.part}")
    if len(h.shape) != 3 or h.shape[2] not in (1, 3) or not all(0 < s <= MAX_SIDE for s in h.shape[:2]):
        raise ProtocolError("shape", f"frames are (H, W, 1|3) with sides <= {MAX_SIDE}, got {h.shape}")
    if h.dtype == DType.UINT8:
        expected = h.shape[0] * h.shape[1] * h.shape[2]
        if len(payload) != expected:
            raise ProtocolError("length", f"shape {h.shape} needs {expected} bytes, payload has {len(payload)}")
        image = np.frombuffer(payload, dtype=np.uint8).reshape(h.shape)
    elif h.dtype == DType.JPEG:
        import cv2

        flag = cv2.IMREAD_GRAYSCALE if h.shape[2] == 1 else cv2.IMREAD_COLOR
        decoded = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), flag) if len(payload) else None
        if decoded is None:
            raise ProtocolError("jpeg", "payload is not a decodable JPEG")
        if decoded.ndim == 2:
            decoded = decoded[..., None]
        if decoded.shape != h.shape:
            raise ProtocolError("shape", f"JPEG decodes to {decoded.shape}, header says {h.shape}")
        image = decoded
    else:
        raise ProtocolError("dtype", f"frames are uint8 or JPEG, got dtype code {h.dtype}")
    return FrameMessage(h.frame_id, h.capture_ns, image, h.label, h.sent_ns, h.camera)


def decode_features(data: bytes, expected_dim: int | None = None) -> FeatureMessage:
    h, payload = _parse_header(data)
    if h.kind != Kind.FEATURES:
        raise ProtocolError("kind", f"expected a feature message, got kind {h.kind}")
    if h.dtype != DType.FLOAT16:
        raise ProtocolError("dtype", f"features are float16, got dtype code {h.dtype}")
    if len(h.shape) != 1 or not 0 < h.shape[0] <= MAX_FEATURE_DIM:
        raise ProtocolError("shape", f"features are a (D,) vector, got shape {h.shape}")
    if expected_dim is not None and h.shape[0] != expected_dim:
        raise ProtocolError("shape", f"part {h.part} sends {expected_dim} features, message has {h.shape[0]}")
    if len(payload) != 2 * h.shape[0]:
        raise ProtocolError(
            "length", f"{h.shape[0]} float16 values need {2 * h.shape[0]} bytes, payload has {len(payload)}"
        )
    if h.part == NO_PART:
        raise ProtocolError("part", "feature message without a part index")
    features = np.frombuffer(payload, dtype=np.float16)
    if not np.isfinite(features).all():
        raise ProtocolError("nonfinite", "feature vector holds NaN or inf")
    return FeatureMessage(
        h.frame_id, h.capture_ns, h.part, features, h.recv_ns, h.sent_ns, h.infer_us, h.label, h.camera
    )
