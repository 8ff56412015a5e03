"""A board's own rate now: frames per busy second over the last second or so, with the parts it runs now.

The stats' `own_fps` averages over the whole run, so a board that slows down mid-run would take minutes to show
it; the coordinator needs the rate now. A change of hosted parts starts a new measurement (the work per frame
changed), and the best rate each set of parts sustained is kept as the board's own yardstick for the measured
throttling state.

The time a frame took is the larger of its wall time busy and the CPU time the process spent per frame over its
CPU quota (when it has one, power/cpu_limit.py): under a quota a lightly loaded board computes each frame in a
burst at full speed and would look as fast as an unlimited one, though it could not keep that pace.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

Parts = tuple[int, ...]


@dataclass
class RecentOwnRate:
    window_s: float = 1.0
    min_frames: int = 5  # fewer frames than this in the window say nothing about speed (an idle board)
    _marks: deque[tuple[float, int, float]] = field(default_factory=deque)  # (time, frames, work seconds)
    _work_s: float = 0.0
    _last: tuple[float, float] | None = None  # (busy_s, cpu_s) at the previous mark
    _parts: Parts = ()
    _best: dict[Parts, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(
        self, now: float, frames: int, busy_s: float, parts: Parts, cpu_s: float = 0.0, cpu_limit: float | None = None
    ) -> tuple[float | None, int, float | None]:
        """Record the counters now (busy wall seconds, process CPU seconds, the CPU quota in cores or None);
        (frames per busy second over the window or None, frames in the window, the share of the window it was
        busy or None)."""
        with self._lock:
            if self._last is not None:
                busy, cpu = busy_s - self._last[0], cpu_s - self._last[1]
                self._work_s += max(busy, cpu / cpu_limit if cpu_limit else 0.0)
            self._last = (busy_s, cpu_s)
            if parts != self._parts:
                self._marks.clear()
                self._parts = parts
            self._marks.append((now, frames, self._work_s))
            while len(self._marks) > 2 and self._marks[1][0] <= now - self.window_s:
                self._marks.popleft()
            (t0, f0, b0), (t1, f1, b1) = self._marks[0], self._marks[-1]
            done, busy = f1 - f0, b1 - b0
            share = round(min(busy / (t1 - t0), 1.0), 3) if t1 > t0 else None
            if done < self.min_frames or busy <= 0:
                return None, max(done, 0), share
            rate = done / busy
            self._best[parts] = max(rate, self._best.get(parts, 0.0))
            return round(rate, 3), done, share

    def best(self) -> float | None:
        """The best rate the current parts sustained over a window (None before one was measured)."""
        with self._lock:
            return self._best.get(self._parts)
