"""Camera URIs, jetson-inference style: one string names a source and its options. The schemes are those of the
source registry (camera/source_registry.py); the kit's own:

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

from urllib.parse import parse_qsl

from vitfleet.camera import builtin_sources  # noqa: F401 - the kit's own sources register themselves
from vitfleet.camera.source_registry import schemes, source_kind, sources_help
from vitfleet.camera.source_spec import CameraUriError, SourceSpec

__all__ = ["CameraUriError", "SourceSpec", "parse_uri", "sources_help"]


def parse_uri(uri: str) -> SourceSpec:
    text = uri.strip()
    if not text:
        raise CameraUriError("empty camera URI; use e.g. /dev/video0, file://clip.mp4 or dataset://fashion-mnist/test")
    if text.startswith("/dev/video"):
        return SourceSpec("v4l2", text, {}, uri, live=True)
    known = ", ".join(s + "://" for s in schemes())
    if "://" not in text:
        raise CameraUriError(f"camera URI {uri!r} has no scheme; use one of {known} or a /dev/videoN path")
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    kind = source_kind(scheme)
    if kind is None:
        raise CameraUriError(f"unknown camera scheme {scheme!r} in {uri!r}; use one of {known}")
    if kind.whole_uri:
        return SourceSpec(scheme, text, {}, uri, kind.live)  # the query belongs to the stream URL
    target, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    if kind.example_target is not None and not target:
        raise CameraUriError(
            f"camera URI {uri!r} names no {'file' if scheme == 'file' else scheme}; "
            f"e.g. {scheme}://{kind.example_target}"
        )
    return SourceSpec(scheme, target or kind.default_target, options, uri, kind.live)
