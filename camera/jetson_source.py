"""Jetson CSI cameras: jetson_utils.videoSource when installed, else OpenCV through GStreamer.

UNVERIFIED ON HARDWARE: this machine has no Jetson and no CSI camera. The wiring is
tested against fakes (tests/test_camera_sources.py); the pipeline string follows
NVIDIA's documented nvarguscamerasrc usage.
"""

from __future__ import annotations

import importlib

import numpy as np

from vitfleet.camera.frame_source import CameraError, Frame, FrameSource, SourceLost
from vitfleet.camera.opencv_source import OpenCvSource
from vitfleet.camera.source_spec import SourceSpec


def gstreamer_pipeline(sensor_id: int, width: int, height: int, fps: int) -> str:
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1 ! "
        "nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
        "appsink drop=true max-buffers=1"
    )


def opencv_has_gstreamer() -> bool:
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if "GStreamer" in line and ":" in line:
            return "YES" in line.split(":", 1)[1]
    return False


class JetsonUtilsSource(FrameSource):
    live = True

    def __init__(self, module: object, uri: str) -> None:
        self._ju = module
        self._src = module.videoSource(uri)  # type: ignore[attr-defined]
        self._index = 0

    def read(self) -> Frame | None:
        image = self._src.Capture(format="rgb8", timeout=1000)
        if image is None:
            if not self._src.IsStreaming():
                raise SourceLost("jetson_utils videoSource stopped streaming")
            raise SourceLost("jetson_utils videoSource timed out")
        self._ju.cudaDeviceSynchronize()  # type: ignore[attr-defined]
        rgb = np.asarray(self._ju.cudaToNumpy(image), dtype=np.uint8)  # type: ignore[attr-defined]
        frame = Frame(np.ascontiguousarray(rgb[..., ::-1]), None, self._index)  # BGR like every other source
        self._index += 1
        return frame

    def close(self) -> None:
        self._src.Close()


def open_csi(spec: SourceSpec) -> FrameSource:
    sensor = int(spec.target) if spec.target.isdigit() else 0
    try:
        ju = importlib.import_module("jetson_utils")
    except ImportError:
        ju = None
    if ju is not None:
        return JetsonUtilsSource(ju, f"csi://{sensor}")
    if not opencv_has_gstreamer():
        raise CameraError(
            "csi:// needs jetson_utils (jetson-inference) or an OpenCV built with GStreamer "
            "(JetPack's python3-opencv; pip's opencv-python has no GStreamer)"
        )
    import cv2

    width = spec.int_option("width", 1280) or 1280
    height = spec.int_option("height", 720) or 720
    fps = spec.int_option("fps", 30) or 30
    cap = cv2.VideoCapture(gstreamer_pipeline(sensor, width, height, fps), cv2.CAP_GSTREAMER)
    if not cap.isOpened():
        raise SourceLost(f"nvarguscamerasrc sensor-id={sensor} did not start (is nvargus-daemon running?)")
    return OpenCvSource(cap, spec.uri, live=True)
