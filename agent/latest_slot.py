"""A one-item mailbox: a newer frame replaces the one still waiting, and the drop is counted.

An agent slower than the camera must fall behind by dropping frames, never by
building a queue (the queue would turn into unbounded latency and memory).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._item: T | None = None
        self._cond = threading.Condition()
        self.drops = 0
        self.puts = 0

    def put(self, item: T) -> bool:
        """Store item; True when it replaced an unconsumed one."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.drops += 1
            self._item = item
            self.puts += 1
            self._cond.notify()
            return replaced

    def take(self, timeout: float) -> T | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item
