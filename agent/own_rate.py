"""A board's own rate now: frames per busy second over the last second or so, with the parts it runs now.

The stats' `own_fps` averages over the whole run, so a board that slows down mid-run would take minutes to show
it; the coordinator needs the rate now. A change of hosted parts starts a new measurement (the work per frame
changed), and the best rate each set of parts sustained is kept as the board's own yardstick for the measured
throttling state.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

Parts = tuple[int, ...]


@dataclass
class RecentOwnRate:
    window_s: float = 1.0
    min_frames: int = 5          # fewer frames than this in the window say nothing about speed (an idle board)
    _marks: deque[tuple[float, int, float]] = field(default_factory=deque)
    _parts: Parts = ()
    _best: dict[Parts, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, now: float, frames: int, busy_s: float, parts: Parts) -> tuple[float | None, int]:
        """Record the counters now; (frames per busy second over the window or None, frames in the window)."""
        with self._lock:
            if parts != self._parts:
                self._marks.clear()
                self._parts = parts
            self._marks.append((now, frames, busy_s))
            while len(self._marks) > 2 and self._marks[1][0] <= now - self.window_s:
                self._marks.popleft()
            (_, f0, b0), (_, f1, b1) = self._marks[0], self._marks[-1]
            done, busy = f1 - f0, b1 - b0
            if done < self.min_frames or busy <= 0:
                return None, max(done, 0)
            rate = done / busy
            self._best[parts] = max(rate, self._best.get(parts, 0.0))
            return round(rate, 3), done

    def best(self) -> float | None:
        """The best rate the current parts sustained over a window (None before one was measured)."""
        with self._lock:
            return self._best.get(self._parts)
