"""OpenCV-backed sources: V4L2 webcams, video files, still image files, network streams."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vitfleet.camera.frame_rate import FrameRate
from vitfleet.camera.frame_source import CameraError, Frame, FrameSource, SourceInfo, SourceLost
from vitfleet.camera.latest_frame import LatestFrameSource
from vitfleet.camera.source_spec import SourceSpec
from vitfleet.camera.stream_clock import StreamClock

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# FFmpeg's defaults wait 30 s for a stream that stopped; 5 s notices a dropped camera while riding out a stall.
STREAM_OPEN_TIMEOUT_MS = 5000
STREAM_READ_TIMEOUT_MS = 5000


def as_hwc(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


class OpenCvSource(FrameSource):
    """A cv2.VideoCapture: a video file (finite) or a webcam / network stream (live, raises SourceLost)."""

    def __init__(self, capture: object, name: str, live: bool, stream_clock: bool = False) -> None:
        self._cap = capture
        self.name = name
        self.live = live
        self._index = 0
        # Only backends with real timestamps get a stream clock: RTP for RTSP, the driver's buffer time for V4L2.
        # FFmpeg invents 25-fps times for HTTP MJPEG, and a file's positions are times in the clip, not when
        # anything was captured: those frames are stamped when read.
        self._clock = StreamClock() if stream_clock else None
        self._rate = FrameRate()
        self._stamped = False
        self._shape: tuple[int, ...] | None = None
        # Asked once here: a stream's capture is then read on another thread (latest_frame.py), and a
        # VideoCapture must not be queried while it reads.
        import cv2

        get = capture.get  # type: ignore[attr-defined]
        self._declared_fps = float(get(cv2.CAP_PROP_FPS))
        self._declared_size = int(get(cv2.CAP_PROP_FRAME_WIDTH)), int(get(cv2.CAP_PROP_FRAME_HEIGHT))

    def read(self) -> Frame | None:
        import cv2

        ok, image = self._cap.read()  # type: ignore[attr-defined]
        arrival_ns = time.time_ns()
        if not ok or image is None:
            if self.live:
                raise SourceLost(f"{self.name} returned no frame")
            return None
        pts_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))  # type: ignore[attr-defined]
        capture_ns = None if self._clock is None else self._clock.capture_ns(pts_ms, arrival_ns)
        self._stamped = self._stamped or capture_ns is not None
        self._rate.tick(pts_ms if capture_ns is not None else arrival_ns / 1e6)
        self._shape = image.shape
        frame = Frame(as_hwc(image), None, self._index, capture_ns)
        self._index += 1
        return frame

    def describe(self) -> SourceInfo:
        # A live source's rate is measured (what it really sends); a file's is what its container declares.
        fps = self._rate.fps() if self.live else None
        if fps is None and self._declared_fps > 0:
            fps = round(self._declared_fps, 2)
        # The decoded frames' size is the real one (a webcam may ignore the size it was asked for).
        width, height = self._declared_size if self._shape is None else (self._shape[1], self._shape[0])
        return SourceInfo(fps, width or None, height or None, "stream" if self._stamped else "read")

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
    if target.startswith("/dev/video") and target[len("/dev/video") :].isdigit():
        return int(target[len("/dev/video") :])
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
        path = Path(f"/dev/video{device}" if isinstance(device, int) else device)
        if (isinstance(device, int) or device.startswith("/dev/")) and not path.exists():
            raise CameraError(
                f"webcam {path} does not exist; plug the camera in and pick an existing device "
                "from `ls /dev/video*` (in a container, pass it with --device)"
            )
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2) if isinstance(device, int) else cv2.VideoCapture(device)
        if not cap.isOpened():
            raise CameraError(
                f"cannot open webcam {spec.uri or spec.target}; check that the device exists "
                "(ls /dev/video*) and that this user is in the 'video' group"
            )
        width, height = spec.int_option("width", None), spec.int_option("height", None)
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame matters, not a backlog
        return OpenCvSource(cap, spec.uri or spec.target, live=True, stream_clock=True)
    cap = cv2.VideoCapture(
        spec.target,
        cv2.CAP_FFMPEG,
        [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_READ_TIMEOUT_MS,
        ],
    )
    if not cap.isOpened():
        raise SourceLost(f"cannot open stream {spec.target}")  # a stream that is down now may come back
    stream = OpenCvSource(cap, spec.target, live=True, stream_clock=spec.scheme in ("rtsp", "rtsps"))
    return LatestFrameSource(stream, spec.target, timeout_s=2 * STREAM_READ_TIMEOUT_MS / 1000)
