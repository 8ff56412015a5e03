"""Fleet-wide admission: which camera frames the fleet computes, decided once, where the frames enter.

Why here and not in each agent: when every agent keeps its own newest frame, a camera faster than the
slowest board makes the agents compute *different* frames, and the aggregator can rarely fuse one (86 % of
frames went unanswered). The frame source holds a fixed number of credits instead (`max_in_flight`, 2 by
default). A frame is admitted only while a credit is free, and a prediction coming back — whole, or
degraded at the aggregator's deadline — returns its credit. Frames that find no credit are never
published: they are `skipped`, the same frames for every board, and cost no bandwidth.

Two credits keep the slowest board busy without a long queue: it computes frame n while n+1 already waits
in its queue (agent/frame_queue.py, as deep as the credits), and n+2 is sent only once n is answered — so
no agent holds more frames than there are credits and none drops an admitted one. A credit whose prediction never comes back (the aggregator
died) is reclaimed after `timeout` seconds and that frame is counted `lost`, for good: an answer that still comes
afterwards is counted `answered_late` as well, but does not take the frame out of `lost`. By then admission has
already given its credit to another frame (the fleet briefly had more than `max_in_flight` frames out), so the
frame was lost as far as admission is concerned; and `lost` is a Prometheus counter, which must never go down.

Several cameras share one gate (agent/camera_shares.py decides whose frame takes a free credit): every frame is
admitted on a `lane` (its camera's index) and the counts are kept per lane as well as in total.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class AdmissionCounts:
    offered: int = 0  # frames the source delivered
    admitted: int = 0  # frames published to the fleet
    skipped: int = 0  # frames the fleet had no credit for (never published, never computed)
    answered: int = 0  # admitted frames whose prediction came back (in time or late)
    lost: int = 0  # admitted frames whose credit was reclaimed (no answer within the timeout) or given up
    answered_late: int = 0  # lost frames whose answer came back after all (still lost: see the module's doc)

    def add(self, **deltas: int) -> None:
        for key, delta in deltas.items():
            setattr(self, key, getattr(self, key) + delta)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class CreditGate(Generic[T]):
    """In-flight frames by id, at most `credits` of them; a value of type T rides along with each."""

    def __init__(self, credits: int = 2, timeout: float = 5.0) -> None:
        if credits < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {credits}")
        self.credits, self.timeout = credits, timeout
        self._in_flight: OrderedDict[int, tuple[float, T, int]] = OrderedDict()  # id -> (admitted at, value, lane)
        self._reclaimed: OrderedDict[int, tuple[T, int]] = OrderedDict()  # recent timeouts: a late answer counts
        self._cond = threading.Condition()
        self.counts = AdmissionCounts()
        self.lanes: dict[int, AdmissionCounts] = {}

    def count(self, lane: int, **deltas: int) -> None:
        """Add to a lane's counts and to the totals."""
        with self._cond:  # a re-entrant lock: callers inside the gate already hold it
            self.counts.add(**deltas)
            self.lanes.setdefault(lane, AdmissionCounts()).add(**deltas)

    def lane_counts(self, lane: int) -> AdmissionCounts:
        with self._cond:
            return AdmissionCounts(**self.lanes.get(lane, AdmissionCounts()).as_dict())

    def _reclaim_expired(self, now: float) -> None:
        while self._in_flight:
            frame_id, (admitted_at, _, _) = next(iter(self._in_flight.items()))
            if now - admitted_at < self.timeout:
                return
            _, value, lane = self._in_flight.pop(frame_id)
            self.count(lane, lost=1)
            self._remember_reclaimed(frame_id, value, lane)
            self._cond.notify_all()

    def _remember_reclaimed(self, frame_id: int, value: T, lane: int) -> None:
        """Recent lost frames, so an answer that still comes is recognised (answered_late), not `unmatched`."""
        self._reclaimed[frame_id] = (value, lane)
        while len(self._reclaimed) > 1000:
            self._reclaimed.popitem(last=False)

    def try_admit(self, frame_id: int, value: T, lane: int = 0) -> bool:
        """Admit now if a credit is free, else count the frame skipped (a live camera never waits)."""
        with self._cond:
            self.count(lane, offered=1)
            self._reclaim_expired(time.monotonic())
            if len(self._in_flight) >= self.credits:
                self.count(lane, skipped=1)
                return False
            self._admit(frame_id, value, lane)
            return True

    def wait_admit(self, frame_id: int, value: T, stop: threading.Event, lane: int = 0) -> bool:
        """Wait for a free credit, then admit (a replay that may wait for the fleet); False when stopped."""
        with self._cond:
            self.count(lane, offered=1)
            if not self._wait_free(stop):
                return False
            self._admit(frame_id, value, lane)
            return True

    def wait_free(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Wait until a credit is free (True), `stop` is set or `timeout` passed (False). Only a caller that is the
        gate's one admitter may rely on the credit still being free when it then calls `admit`."""
        with self._cond:
            return self._wait_free(stop, timeout)

    def _wait_free(self, stop: threading.Event, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not stop.is_set():
            now = time.monotonic()
            self._reclaim_expired(now)
            if len(self._in_flight) < self.credits:
                return True
            if end is not None and now >= end:
                return False
            oldest = next(iter(self._in_flight.values()))[0]
            wait = max(0.001, min(0.5, oldest + self.timeout - now))
            self._cond.wait(wait if end is None else max(0.001, min(wait, end - now)))
        return False

    def admit(self, frame_id: int, value: T, lane: int) -> bool:
        """Admit a frame whose offer the caller already counted, if a credit is free."""
        with self._cond:
            self._reclaim_expired(time.monotonic())
            if len(self._in_flight) >= self.credits:
                return False
            self._admit(frame_id, value, lane)
            return True

    def _admit(self, frame_id: int, value: T, lane: int) -> None:
        self._in_flight[frame_id] = (time.monotonic(), value, lane)
        self.count(lane, admitted=1)

    def answer(self, frame_id: int) -> T | None:
        """The prediction for frame_id came back: return its credit and its value (None if not in flight)."""
        with self._cond:
            entry = self._in_flight.pop(frame_id, None)
            if entry is None:
                if frame_id not in self._reclaimed:
                    return None
                # Answered after all (a stall longer than the timeout): its prediction counts, the frame stays lost.
                value, lane = self._reclaimed.pop(frame_id)
                self.count(lane, answered_late=1, answered=1)
                return value
            self.count(entry[2], answered=1)
            self._cond.notify_all()
            return entry[1]

    def wait_empty(self, timeout: float) -> None:
        """Drain: wait until every admitted frame is answered or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._in_flight and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def give_up(self) -> int:
        """The source is done and drained: frames still in flight will not be waited for, so they are lost now
        (the last stats and the summary then agree). Returns how many."""
        with self._cond:
            n = len(self._in_flight)
            for frame_id, (_, value, lane) in self._in_flight.items():
                self._remember_reclaimed(frame_id, value, lane)
                self.count(lane, lost=1)
            self._in_flight.clear()
            self._cond.notify_all()
            return n

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._in_flight)

    def in_flight_of(self, lane: int) -> int:
        with self._cond:
            return sum(1 for _, _, held_by in self._in_flight.values() if held_by == lane)
