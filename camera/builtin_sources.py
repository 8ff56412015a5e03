"""The kit's own camera sources, registered by scheme (camera/source_registry.py). Each opener imports its module
when a source is opened: OpenCV, Picamera2 and jetson_utils stay unloaded until a camera needs them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from vitfleet.camera.source_registry import SourceKind, register_source


def _opener(module: str, name: str) -> Callable[[Any], Any]:
    """Open with `vitfleet.camera.<module>.<name>(spec)`, importing the module on first use."""

    def open_source(spec: Any) -> Any:
        return getattr(importlib.import_module(f"vitfleet.camera.{module}"), name)(spec)

    return open_source


_opencv = _opener("opencv_source", "open_opencv")

register_source(
    SourceKind(
        "v4l2", _opencv, "/dev/video0 or v4l2://0 (a V4L2 webcam, ?width=&height=)", live=True, default_target="0"
    )
)
register_source(
    SourceKind(
        "csi", _opener("jetson_source", "open_csi"), "csi://0 (a Jetson CSI camera)", live=True, default_target="0"
    )
)
register_source(
    SourceKind(
        "picam",
        _opener("picam_source", "PicameraSource"),
        "picam://0 (a Raspberry Pi camera, Picamera2)",
        live=True,
        default_target="0",
    )
)
for _scheme in ("rtsp", "rtsps", "http", "https"):
    register_source(
        SourceKind(_scheme, _opencv, f"{_scheme}://host/path (a network stream)", live=True, whole_uri=True)
    )
register_source(
    SourceKind("file", _opencv, "file://clip.mp4 or file://a.png (a video or a still image)", example_target="clip.mp4")
)
register_source(
    SourceKind(
        "dir",
        _opener("still_sources", "DirectorySource"),
        "dir://images/ (a folder's images, by name)",
        example_target="images/",
    )
)
register_source(
    SourceKind(
        "dataset",
        _opener("still_sources", "DatasetSource"),
        "dataset://fashion-mnist/test (a data set split with its labels, ?limit=&start=&size=&channels=)",
        example_target="fashion-mnist/test",
    )
)
register_source(
    SourceKind(
        "synthetic",
        _opener("still_sources", "SyntheticSource"),
        "synthetic:// (generated frames, ?size=&channels=&count=)",
    )
)
