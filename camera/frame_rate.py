"""A source's real frame rate, from the stream's own timestamps when it has them.

Measured on presentation times, the rate is the camera's, not the reader's: a consumer that reads slower than
the stream (frames queue in the socket) still sees the stream's 15 fps. Without timestamps it falls back to
arrival times: for a network stream drained on its reader thread (latest_frame.py), the rate frames arrived at.
"""

from __future__ import annotations

from collections import deque


class FrameRate:
    def __init__(self, window: int = 30) -> None:
        self._times_ms: deque[float] = deque(maxlen=window)

    def tick(self, time_ms: float) -> None:
        self._times_ms.append(time_ms)

    def fps(self) -> float | None:
        # The median interval, not the mean: a frame lost on the network (a gap) or a burst that FFmpeg buffered
        # while probing the stream (intervals near 0) must not pull the camera's rate off.
        times = list(self._times_ms)
        intervals = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
        if not intervals:
            return None
        return round(1000.0 / intervals[len(intervals) // 2], 2)
