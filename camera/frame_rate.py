"""A source's real frame rate, from the stream's own timestamps when it has them.

Measured on presentation times, the rate is the camera's, not the reader's: a consumer that reads slower than
the stream (frames queue in the socket) still sees the stream's 15 fps. Without timestamps it falls back to
arrival times, which is the rate frames were read at.
"""

from __future__ import annotations

from collections import deque


class FrameRate:
    def __init__(self, window: int = 30) -> None:
        self._times_ms: deque[float] = deque(maxlen=window)

    def tick(self, time_ms: float) -> None:
        self._times_ms.append(time_ms)

    def fps(self) -> float | None:
        if len(self._times_ms) < 2:
            return None
        span = self._times_ms[-1] - self._times_ms[0]
        return None if span <= 0 else round((len(self._times_ms) - 1) * 1000.0 / span, 2)
