"""The agent's waiting frames: a short FIFO with the admission credits' depth; overflow drops the oldest.

Admission (agent/admission.py) keeps at most `max_in_flight` frames out, so an agent never holds more than
that many waiting frames and this queue never drops an admitted one. It must hold that many, not one: two
frames can arrive back to back while the inference thread has not yet woken for the first (the first two
frames of a run always do), and a one-frame slot then replaced the first — the same frame on every board,
so that frame was never answered. A deeper backlog only builds when credits came back without this board
(a deadline passed, a credit was reclaimed); then the oldest frame is the one already answered without it,
and dropping it (counted) keeps latency bounded instead of computing stale frames.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameQueue(Generic[T]):
    def __init__(self, capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._items: deque[T] = deque()
        self.capacity = capacity
        self._cond = threading.Condition()
        self.drops = 0
        self.puts = 0

    def put(self, item: T) -> bool:
        """Append item; True when the queue was full and its oldest frame was dropped."""
        with self._cond:
            self._items.append(item)
            self.puts += 1
            dropped = len(self._items) > self.capacity
            if dropped:
                self._items.popleft()
                self.drops += 1
            self._cond.notify()
            return dropped

    def take(self, timeout: float) -> T | None:
        """The oldest waiting frame, or None after `timeout` seconds without one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None
