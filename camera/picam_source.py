"""Raspberry Pi cameras through Picamera2 (imported lazily; it only exists on Raspberry Pi OS).

UNVERIFIED ON HARDWARE: no Pi camera here; wiring tested against a fake module.
Picamera2's "RGB888" format is laid out B, G, R in memory, i.e. OpenCV's BGR.
"""

from __future__ import annotations

import importlib

import numpy as np

from vitfleet.camera.frame_source import CameraError, Frame, FrameSource, SourceLost
from vitfleet.camera.opencv_source import as_hwc
from vitfleet.camera.source_spec import SourceSpec


class PicameraSource(FrameSource):
    live = True

    def __init__(self, spec: SourceSpec) -> None:
        try:
            module = importlib.import_module("picamera2")
        except ImportError:
            raise CameraError(
                "picam:// needs Picamera2: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                "and create the venv with --system-site-packages"
            ) from None
        index = int(spec.target) if spec.target.isdigit() else 0
        width = spec.int_option("width", 640) or 640
        height = spec.int_option("height", 480) or 480
        self._cam = module.Picamera2(index)
        config = self._cam.create_video_configuration(main={"size": (width, height), "format": "RGB888"})
        self._cam.configure(config)
        self._cam.start()
        self._index = 0

    def read(self) -> Frame | None:
        try:
            image = self._cam.capture_array("main")
        except Exception as exc:  # noqa: BLE001 - libcamera errors have no common base class
            raise SourceLost(f"Picamera2 capture failed: {exc}") from exc
        image = np.ascontiguousarray(as_hwc(np.asarray(image, dtype=np.uint8))[..., :3])
        frame = Frame(image, None, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()
