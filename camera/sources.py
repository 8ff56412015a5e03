"""The factory that resolves a camera URI to a frame source, with looping and reconnecting.

Every source yields uint8 (H, W, C) frames with C = 1 or 3, colour in OpenCV's BGR
order (what Preprocessing.prepare expects), plus the ground-truth label when the
source knows it (data set replays).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from vitfleet.camera.frame_source import CameraError, Frame, FrameSource, SourceInfo, SourceLost
from vitfleet.camera.source_registry import source_kind
from vitfleet.camera.source_spec import SourceSpec
from vitfleet.camera.uri import parse_uri

log = logging.getLogger("vitfleet.camera")


class LoopingSource(FrameSource):
    """Restart a finite source at its end (a replayed clip, folder or data set)."""

    def __init__(self, opener: Callable[[], FrameSource]) -> None:
        self._opener = opener
        self._source = opener()
        self.class_names = self._source.class_names
        self.loops = 0

    def read(self) -> Frame | None:
        frame = self._source.read()
        if frame is None:
            self._source.close()
            self._source = self._opener()
            self.loops += 1
            frame = self._source.read()  # None again means an empty source: stop instead of spinning
        return frame

    def close(self) -> None:
        self._source.close()

    def describe(self) -> SourceInfo:
        return self._source.describe()

    def __len__(self) -> int:
        return len(self._source)


class ReconnectingSource(FrameSource):
    """Reopen a live source after it drops, waiting min_delay, doubling up to max_delay.

    `reconnects` counts the times a source that had delivered frames dropped and was opened again (a camera that
    is merely late for its first connection is not a reconnect); `failures` counts every failed open or read.
    """

    live = True

    def __init__(
        self,
        opener: Callable[[], FrameSource],
        min_delay: float = 0.5,
        max_delay: float = 10.0,
        stop: threading.Event | None = None,
    ) -> None:
        self._opener = opener
        self.min_delay, self.max_delay = min_delay, max_delay
        self._stop = stop or threading.Event()
        self._source: FrameSource | None = None
        self.reconnects = 0
        self.failures = 0
        self._connected_once = False  # a reopen counts as a reconnect only after a first connection
        self.delays: deque[float] = deque(maxlen=32)  # the backoff actually applied, newest last
        try:
            # A wrong URI (CameraError) fails loudly here; a stream that is merely down is retried in read().
            self._source = opener()
        except SourceLost as exc:
            log.warning("camera source not up yet (%s); will keep trying", exc)

    def read(self) -> Frame | None:
        delay = self.min_delay
        while not self._stop.is_set():
            if self._source is None:
                try:
                    self._source = self._opener()
                    self.reconnects += int(self._connected_once)
                    log.warning("camera source opened after %d failure(s)", self.failures)
                except (CameraError, SourceLost, OSError) as exc:
                    self.failures += 1
                    log.warning("camera source still unavailable (%s); retrying in %.1f s", exc, delay)
                    self.delays.append(delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.max_delay)
                    continue
            try:
                frame = self._source.read()
                if frame is None:
                    raise SourceLost("the live source ended")
                self._connected_once = True
                return frame
            except SourceLost as exc:
                self.failures += 1
                log.warning("camera source lost (%s); reconnecting in %.1f s", exc, delay)
                self._source.close()
                self._source = None
                self.delays.append(delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_delay)
        return None

    def describe(self) -> SourceInfo:
        """The current connection's figures (nothing known while the stream is down)."""
        return SourceInfo() if self._source is None else self._source.describe()

    def close(self) -> None:
        self._stop.set()
        if self._source is not None:
            self._source.close()


def open_spec(spec: SourceSpec) -> FrameSource:
    """Open one source without looping or reconnecting."""
    kind = source_kind(spec.scheme)
    if kind is None:  # parse_uri refuses unknown schemes: only a spec built by hand gets here
        raise CameraError(f"no camera source is registered for scheme {spec.scheme!r}")
    return kind.open(spec)


def open_source(
    uri: str,
    loop: bool = False,
    reconnect_min: float = 0.5,
    reconnect_max: float = 10.0,
    stop: threading.Event | None = None,
) -> FrameSource:
    """A source by URI: live ones reconnect with backoff, finite ones loop when asked."""
    spec = parse_uri(uri)
    if spec.live:
        return ReconnectingSource(lambda: open_spec(spec), reconnect_min, reconnect_max, stop)
    if loop:
        return LoopingSource(lambda: open_spec(spec))
    return open_spec(spec)


class FramePacer:
    """Hold a steady frame rate without drift; fps <= 0 means as fast as possible."""

    def __init__(self, fps: float, stop: threading.Event | None = None) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next = time.monotonic()
        self._stop = stop or threading.Event()

    def wait(self) -> None:
        if self.period == 0.0:
            return
        now = time.monotonic()
        if self._next > now:
            self._stop.wait(self._next - now)
            self._next += self.period
        else:
            # Running late (slow source): restart the schedule instead of bursting to catch up.
            self._next = now + self.period
