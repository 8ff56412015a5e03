"""Several cameras, one fleet: whose frame takes a credit when one frees up (weighted fair shares).

Credits alone (agent/admission.py) favour the fastest camera: a free credit goes to whichever frame arrives
first, and a 30 fps camera arrives six times as often as a 5 fps one, so the slow camera would find every credit
taken. Here each camera holds at most one frame waiting (its newest: an older waiting frame is skipped when a
newer one arrives, so the fleet computes current frames), and a free credit goes to the waiting frame of the
camera furthest behind its weighted share. That is stride scheduling: every admission advances the camera's
`pass` by 1/weight and the smallest pass goes first. A camera that had nothing waiting re-enters at the current
virtual time, so an idle camera cannot bank credits and then starve the others. What each camera gets is its
weighted max-min fair share (`fair_shares`): a camera that offers less than its share has every frame computed,
the rest of the fleet's rate is split among the others by weight.

One dispatcher thread admits (`next_admitted`), one reader thread per camera offers (`offer`); `offered` and
`skipped` are counted when a frame leaves its slot, so offered = admitted + skipped, and a frame still waiting
when the run stops was never offered to the fleet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from vitfleet.agent.admission import CreditGate

W = TypeVar("W")  # what waits in a camera's slot (the frame and its record)
T = TypeVar("T")  # what rides with an admitted frame in the gate (the record only: no pixels kept in flight)


@dataclass
class _Lane(Generic[W]):
    weight: float
    waiting: W | None = None
    pass_: float = 0.0


class CameraShares(Generic[W, T]):
    def __init__(self, gate: CreditGate[T], weights: list[float], in_gate: Callable[[W], T]) -> None:
        if not weights or any(w <= 0 for w in weights):
            raise ValueError(f"every camera needs a weight > 0, got {weights}")
        self.gate, self.in_gate = gate, in_gate
        self.lanes = [_Lane[W](float(w)) for w in weights]
        self._vtime = 0.0
        self._cond = threading.Condition()
        # Frame ids start at the time of the first admission in µs: unique across camera restarts, so the
        # aggregator's "already fused" memory never mistakes a new frame for a late one.
        self._next_id: int | None = None

    def offer(self, lane: int, item: W, stop: threading.Event, wait: bool) -> bool:
        """A camera's new frame. Paced (`wait` False): it replaces the camera's waiting frame, which is skipped.
        Unpaced (`wait` True, a replay that must not skip): wait until the previous one is admitted. False when
        stopped first."""
        with self._cond:
            slot = self.lanes[lane]
            while wait and slot.waiting is not None:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            if slot.waiting is not None:
                self.gate.count(lane, offered=1, skipped=1)
            else:
                slot.pass_ = max(slot.pass_, self._vtime)  # re-enters at the current virtual time
            slot.waiting = item
            self._cond.notify_all()
            return True

    def _pick(self) -> int | None:
        ready = [i for i, lane in enumerate(self.lanes) if lane.waiting is not None]
        return min(ready, key=lambda i: (self.lanes[i].pass_, i)) if ready else None

    def next_admitted(self, stop: threading.Event, timeout: float = 0.2) -> tuple[int, int, W] | None:
        """Wait for a waiting frame and a free credit, admit the frame whose camera is furthest behind its share:
        (frame id, camera index, item); None after `timeout` or when stopped."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._pick() is None:
                left = end - time.monotonic()
                if stop.is_set() or left <= 0:
                    return None
                self._cond.wait(left)
        # Only this thread admits, so a credit found free stays free until it takes it.
        if not self.gate.wait_free(stop, max(0.0, end - time.monotonic())):
            return None
        with self._cond:
            lane = self._pick()
            if lane is None:
                return None
            slot = self.lanes[lane]
            if self._next_id is None:
                self._next_id = time.time_ns() // 1000
            item, frame_id = slot.waiting, self._next_id
            assert item is not None
            self.gate.count(lane, offered=1)
            if not self.gate.admit(frame_id, self.in_gate(item), lane):
                self.gate.count(lane, offered=-1)
                return None
            slot.waiting = None
            self._next_id += 1
            self._vtime = slot.pass_
            slot.pass_ += 1.0 / slot.weight
            self._cond.notify_all()
            return frame_id, lane, item

    def waiting(self) -> int:
        with self._cond:
            return sum(lane.waiting is not None for lane in self.lanes)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self.gate.wake()


def fair_shares(capacity: float, demands: list[float], weights: list[float]) -> list[float]:
    """Weighted max-min fair shares of `capacity` (water-filling): a demand below its weighted part is met in
    full, and what it leaves is split among the others by weight."""
    shares = [0.0] * len(demands)
    open_ = [i for i, d in enumerate(demands) if d > 0]
    left = max(0.0, capacity)
    while open_ and left > 1e-12:
        total_w = sum(weights[i] for i in open_)
        sated = [i for i in open_ if demands[i] - shares[i] <= left * weights[i] / total_w]
        if not sated:
            for i in open_:
                shares[i] += left * weights[i] / total_w
            break
        for i in sated:
            left -= demands[i] - shares[i]
            shares[i] = demands[i]
        open_ = [i for i in open_ if i not in sated]
    return shares
