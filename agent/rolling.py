"""Small thread-safe measurement windows: latency percentiles and event rates."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RollingLatency:
    """The last `size` samples (ms); percentiles over that window."""

    def __init__(self, size: int = 2000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(ms)
            self.count += 1

    def percentile(self, q: float) -> float | None:
        with self._lock:
            if not self._values:
                return None
            return float(np.percentile(np.fromiter(self._values, float), q))

    def summary(self, prefix: str) -> dict[str, float | None]:
        return {f"{prefix}_p50_ms": _round(self.percentile(50)), f"{prefix}_p99_ms": _round(self.percentile(99))}


class RateMeter:
    """Events per second since the previous call to rate()."""

    def __init__(self) -> None:
        self._count = 0
        self._last_count = 0
        self._last_t = time.monotonic()
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    @property
    def total(self) -> int:
        return self._count

    def rate(self) -> float:
        with self._lock:
            now = time.monotonic()
            dt = max(now - self._last_t, 1e-9)
            r = (self._count - self._last_count) / dt
            self._last_count, self._last_t = self._count, now
            return r


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
