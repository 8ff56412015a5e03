"""Emulating a board N times slower than this machine (heterogeneous fleets on one machine, tests, benchmarks).

The extra busy time scales the median of recent frames' compute, not each frame's own: on a shared machine one
frame's scheduler stall (say 20 ms) would otherwise be multiplied with it (x12: 240 ms, past the aggregator's
200-ms deadline floor), a stall a real slow board does not have. A steady change in the engine's speed still
moves the median within a few frames.
"""

from __future__ import annotations

from vitfleet.agent.rolling import RollingLatency


class SlowBoardEmulation:
    def __init__(self, slowdown: float, window: int = 31) -> None:
        if slowdown < 1.0:
            raise ValueError(f"slowdown must be >= 1 (1 = this machine's own speed), got {slowdown}")
        self.slowdown = slowdown
        self._compute_ms = RollingLatency(window)

    @property
    def active(self) -> bool:
        return self.slowdown > 1.0

    def extra_seconds(self, compute_s: float) -> float:
        """How much longer to stay busy after a part took `compute_s` here."""
        if not self.active:
            return 0.0
        self._compute_ms.add(compute_s * 1e3)
        typical_ms = self._compute_ms.percentile(50) or 0.0
        return (self.slowdown - 1.0) * typical_ms / 1e3
