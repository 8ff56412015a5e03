"""How long the aggregator waits for a frame's missing parts after the first one arrived.

Fixed when configured; otherwise derived from what it measures: the spread between
the first and the last part of complete frames (p99 over a window, x2 plus 10 ms),
clamped to [floor, ceiling]. Until enough complete frames were seen it uses `initial`.
The 200 ms floor keeps a scheduler hiccup on a busy board from turning into a degraded answer. It costs
little: with credit admission (agent/admission.py) the fleet never waits out a deadline while every part
is healthy (a complete frame is fused at once), and a part that is gone is declared absent after three
missed deadlines (agent/aggregator.py), so the deadline only bounds the rare late part. At 50 ms, a loaded
2-core machine turned 9 of 1,000 demo frames degraded.
"""

from __future__ import annotations

from vitfleet.agent.rolling import RollingLatency


class DeadlinePolicy:
    def __init__(
        self,
        fixed_ms: float | None = None,
        initial_ms: float = 500.0,
        floor_ms: float = 200.0,
        ceiling_ms: float = 1000.0,
        warmup: int = 20,
    ) -> None:
        self.fixed_ms = fixed_ms
        self.initial_ms, self.floor_ms, self.ceiling_ms, self.warmup = initial_ms, floor_ms, ceiling_ms, warmup
        self.spread = RollingLatency(500)

    def observe_complete(self, spread_ms: float) -> None:
        self.spread.add(spread_ms)

    @property
    def deadline_ms(self) -> float:
        if self.fixed_ms is not None:
            return self.fixed_ms
        if self.spread.count < self.warmup:
            return self.initial_ms
        p99 = self.spread.percentile(99) or 0.0
        return min(self.ceiling_ms, max(self.floor_ms, 2.0 * p99 + 10.0))

    @property
    def source(self) -> str:
        if self.fixed_ms is not None:
            return "configured"
        return "measured" if self.spread.count >= self.warmup else "initial"
