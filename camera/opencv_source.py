"""OpenCV-backed sources: V4L2 webcams, video files, still image files, network streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitfleet.camera.frame_source import CameraError, Frame, FrameSource, SourceLost
from vitfleet.camera.uri import SourceSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def as_hwc(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


class OpenCvSource(FrameSource):
    def __init__(self, capture: object, name: str, live: bool) -> None:
        self._cap = capture
        self.name = name
        self.live = live
        self._index = 0

    def read(self) -> Frame | None:
        ok, image = self._cap.read()  # type: ignore[attr-defined]
        if not ok or image is None:
            if self.live:
                raise SourceLost(f"{self.name} returned no frame")
            return None
        frame = Frame(as_hwc(image), None, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()  # type: ignore[attr-defined]

    def __len__(self) -> int:
        import cv2

        return 0 if self.live else max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))  # type: ignore[attr-defined]


class StillImageSource(FrameSource):
    def __init__(self, image: np.ndarray) -> None:
        self._image = as_hwc(image)
        self._done = False

    def read(self) -> Frame | None:
        if self._done:
            return None
        self._done = True
        return Frame(self._image, None, 0)

    def __len__(self) -> int:
        return 1


def v4l2_target(target: str) -> int | str:
    if target.isdigit():
        return int(target)
    if target.startswith("/dev/video") and target[len("/dev/video"):].isdigit():
        return int(target[len("/dev/video"):])
    return target


def open_opencv(spec: SourceSpec) -> FrameSource:
    import cv2

    if spec.scheme == "file":
        path = Path(spec.target).expanduser()
        if not path.is_file():
            raise CameraError(f"video/image file {path} does not exist; give file://<path to .mp4/.avi/.png>")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise CameraError(f"OpenCV cannot decode image {path}")
            if image.dtype != np.uint8:
                raise CameraError(f"image {path} is {image.dtype}; only 8-bit images are supported")
            if image.ndim == 3 and image.shape[2] == 4:
                image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
            return StillImageSource(image)
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CameraError(f"OpenCV cannot open video {path} (unsupported codec?); convert it to MJPEG/H.264 .mp4")
        return OpenCvSource(cap, str(path), live=False)
    if spec.scheme == "v4l2":
        device = v4l2_target(spec.target)
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2) if isinstance(device, int) else cv2.VideoCapture(device)
        if not cap.isOpened():
            raise CameraError(f"cannot open webcam {spec.uri or spec.target}; check that the device exists "
                              "(ls /dev/video*) and that this user is in the 'video' group")
        width, height = spec.int_option("width", None), spec.int_option("height", None)
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame matters, not a backlog
        return OpenCvSource(cap, spec.uri or spec.target, live=True)
    cap = cv2.VideoCapture(spec.target)
    if not cap.isOpened():
        raise SourceLost(f"cannot open stream {spec.target}")  # a stream that is down now may come back
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return OpenCvSource(cap, spec.target, live=True)
