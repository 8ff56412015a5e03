"""Read a network stream on its own thread and hand out the newest frame.

FFmpeg queues every packet of an RTSP/HTTP stream: a consumer slower than the camera (a paced camera node, a
fleet holding frames back) would fall further behind the live scene with every frame, and the first read after
connecting hands out the ~2 s of stream FFmpeg buffered while probing it. Draining the stream on a thread keeps
the consumer on the newest frame (CAP_PROP_BUFFERSIZE, the V4L2 answer, means nothing to FFmpeg); the frames
it replaced unread are counted, not hidden.
"""

from __future__ import annotations

import threading

from vitfleet.camera.frame_source import Frame, FrameSource, SourceInfo, SourceLost


class LatestFrameSource(FrameSource):
    live = True

    def __init__(self, source: FrameSource, name: str, timeout_s: float) -> None:
        self._source = source
        self.name = name
        self.timeout_s = timeout_s  # longer than the backend's own read timeout, which reports a drop first
        self.replaced = 0  # frames newer ones overwrote before anyone read them
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._error: SourceLost | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=f"camera-reader {name}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            self._drain_until_closed()
        finally:
            # The thread owns the capture: OpenCV's VideoCapture must not be released during a read on another
            # thread, so it is released here, after the last read.
            self._source.close()

    def _drain_until_closed(self) -> None:
        while True:
            try:
                frame = self._source.read()
                error = None if frame is not None else SourceLost(f"{self.name} ended")
            except SourceLost as exc:
                frame, error = None, exc
            with self._cond:
                if self._closed:
                    return
                if error is not None:
                    self._error = error
                    self._cond.notify_all()
                    return
                self.replaced += int(self._latest is not None)
                self._latest = frame
                self._cond.notify_all()

    def read(self) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._latest is not None or self._error is not None or self._closed, self.timeout_s
            ):
                raise SourceLost(f"{self.name} delivered no frame for {self.timeout_s:.0f} s")
            if self._latest is None:
                raise self._error or SourceLost(f"{self.name} is closed")
            frame, self._latest = self._latest, None
            return frame

    def describe(self) -> SourceInfo:
        return self._source.describe()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        # A live stream's read returns within a frame period; a stalled one within the backend's read timeout.
        self._thread.join(timeout=self.timeout_s)
