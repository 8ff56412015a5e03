"""Camera URIs, jetson-inference style: one string names a source and its options.

    /dev/video0, v4l2://0          V4L2 webcam through OpenCV (?width=&height=)
    csi://0                        Jetson CSI camera (jetson_utils, else OpenCV+GStreamer nvarguscamerasrc)
    picam://0                      Raspberry Pi camera (Picamera2)
    rtsp://host/path, http(s)://   network stream through OpenCV
    file://clip.mp4, file://a.png  video or still image
    dir://folder/                  the images of a folder, sorted by name
    dataset://fashion-mnist/test   a data set split, replayed with its labels
                                   (?limit=&start=&data_dir=; folder: sets also ?size=&channels=)
    synthetic://                   generated frames (?size=&channels=&count=)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from vitfleet.errors import UserError

SCHEMES = ("v4l2", "csi", "picam", "rtsp", "rtsps", "http", "https", "file", "dir", "dataset", "synthetic")
LIVE_SCHEMES = ("v4l2", "csi", "picam", "rtsp", "rtsps", "http", "https")


class CameraUriError(UserError):
    """A camera URI that names no known source or carries a bad option."""


@dataclass(frozen=True)
class SourceSpec:
    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)
    uri: str = ""

    @property
    def live(self) -> bool:
        return self.scheme in LIVE_SCHEMES

    def int_option(self, key: str, default: int | None) -> int | None:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise CameraUriError(f"camera URI {self.uri!r}: option {key}={raw!r} must be an integer") from None
        if value < 0:
            raise CameraUriError(f"camera URI {self.uri!r}: option {key}={raw!r} must be >= 0")
        return value


def parse_uri(uri: str) -> SourceSpec:
    text = uri.strip()
    if not text:
        raise CameraUriError("empty camera URI; use e.g. /dev/video0, file://clip.mp4 or dataset://fashion-mnist/test")
    if text.startswith("/dev/video"):
        return SourceSpec("v4l2", text, {}, uri)
    if "://" not in text:
        raise CameraUriError(f"camera URI {uri!r} has no scheme; use one of {', '.join(s + '://' for s in SCHEMES)} "
                             "or a /dev/videoN path")
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise CameraUriError(f"unknown camera scheme {scheme!r} in {uri!r}; use one of "
                             f"{', '.join(s + '://' for s in SCHEMES)}")
    if scheme in ("rtsp", "rtsps", "http", "https"):
        return SourceSpec(scheme, text, {}, uri)  # the query belongs to the stream URL
    target, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    if scheme in ("file", "dir", "dataset") and not target:
        raise CameraUriError(f"camera URI {uri!r} names no {'file' if scheme == 'file' else scheme}; "
                             f"e.g. {scheme}://" + {"file": "clip.mp4", "dir": "images/",
                                                    "dataset": "fashion-mnist/test"}[scheme])
    if scheme in ("v4l2", "csi", "picam") and not target:
        target = "0"
    return SourceSpec(scheme, target, options, uri)
