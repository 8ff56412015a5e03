"""Cameras in, admitted frames out: the one admission-and-publish loop of every frame source.

The camera node (agent/camera_node.py) and an agent with its own camera (`vitfleet agent --camera`) both run it:
one reader thread per camera reads at the camera's pace and offers each frame to admission
(agent/camera_shares.py: weighted shares of the credits in agent/admission.py); the caller's thread takes the
admitted frames and `publish`es each as a frame message with its id, camera index and capture time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vitfleet.agent.admission import CreditGate
from vitfleet.agent.camera_shares import CameraShares
from vitfleet.agent.protocol import NO_LABEL, FrameMessage
from vitfleet.camera.frame_source import Frame, FrameSource
from vitfleet.camera.sources import FramePacer


@dataclass
class CameraFeed:
    """One camera a frame source reads: `index` is its place in the fleet's `cameras` (its id on the wire)."""

    name: str
    source: FrameSource
    fps: float = 10.0
    weight: float = 1.0
    encoding: str = "raw"
    index: int = 0
    uri: str | None = None


@dataclass
class Sent:
    """What rides with an admitted frame until its prediction returns the credit (no pixels kept in flight)."""

    capture_ns: int
    label: int
    camera: int


@dataclass
class _Waiting:
    frame: Frame
    sent: Sent
    read_ns: int


# (frame id, the camera, the frame message to publish, the frame as the source gave it)
Publish = Callable[[int, CameraFeed, FrameMessage, Frame], None]


class CameraLoop:
    def __init__(
        self,
        feeds: list[CameraFeed],
        gate: CreditGate[Sent],
        stop: threading.Event,
        more: Callable[[], bool] = lambda: True,
    ) -> None:
        """`more()` False ends the loop (a frame budget or a duration reached)."""
        if not feeds:
            raise ValueError("a frame source needs at least one camera")
        self.feeds, self.gate, self._stop, self._more = feeds, gate, stop, more
        self.shares: CameraShares[_Waiting, Sent] = CameraShares(gate, [f.weight for f in feeds], lambda w: w.sent)
        self._readers_left = len(feeds)
        self._readers_lock = threading.Lock()
        self._readers_done = threading.Event()
        self._readers: list[threading.Thread] = []

    def _read(self, lane: int) -> None:
        feed = self.feeds[lane]
        pacer = FramePacer(feed.fps, self._stop)
        try:
            while not self._stop.is_set() and self._more():
                pacer.wait()
                frame = feed.source.read()
                if frame is None:
                    return
                read_ns = time.time_ns()
                label = NO_LABEL if frame.label is None else int(frame.label)
                # A stream's own capture time (camera/stream_clock.py) where it has one, so e2e includes the stream.
                sent = Sent(read_ns if frame.capture_ns is None else frame.capture_ns, label, feed.index)
                if not self.shares.offer(lane, _Waiting(frame, sent, read_ns), self._stop, wait=feed.fps <= 0):
                    return
        finally:
            with self._readers_lock:
                self._readers_left -= 1
                if self._readers_left == 0:
                    self._readers_done.set()
            self.shares.wake()

    def run(self, publish: Publish) -> None:
        """Read every camera and publish what admission lets through, until the cameras end, `more()` says no or
        the stop event is set."""
        self._readers = [
            threading.Thread(target=self._read, args=(lane,), name=f"camera-read-{f.name}", daemon=True)
            for lane, f in enumerate(self.feeds)
        ]
        for reader in self._readers:
            reader.start()
        try:
            while not self._stop.is_set() and self._more():
                got = self.shares.next_admitted(self._stop)
                if got is None:
                    if self._readers_done.is_set() and self.shares.waiting() == 0:
                        return
                    continue
                frame_id, lane, waiting = got
                feed, sent, read_ns = self.feeds[lane], waiting.sent, waiting.read_ns
                if feed.fps <= 0:
                    # An unpaced source is read when the fleet can take a frame: stamp it when it goes, or every
                    # end-to-end figure would include the wait for the previous frame's credit.
                    read_ns = time.time_ns()
                    if waiting.frame.capture_ns is None:
                        sent.capture_ns = read_ns
                publish(
                    frame_id,
                    feed,
                    FrameMessage(frame_id, sent.capture_ns, waiting.frame.image, sent.label, read_ns, feed.index),
                    waiting.frame,
                )
        finally:
            self.wake()

    def wake(self) -> None:
        self.shares.wake()

    def join(self, timeout: float = 2.0) -> None:
        """After the stop event is set: wait for the reader threads (a reader may be inside a slow read)."""
        self.wake()
        for reader in self._readers:
            reader.join(timeout)
