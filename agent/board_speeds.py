"""What the coordinator takes each board's speed to be: measured, and changed only by a change that persists.

An agent reports its frames per busy second over the last second with the parts it runs (`recent_own_fps`);
times the placement's cost of those parts, that is the board's speed in the cost model's units (work per
second), comparable between boards whatever parts they run. A board's speed is *trusted* only after every report
for `hold_s` has said the same thing: all beyond `tolerance` of the trusted figure, on the same side (a first
figure also needs `hold_s` of reports). A board shows it is slower only while it is busy (at least
`BUSY_TO_SLOW` of the time): a lightly loaded board spreads its fixed costs (its network thread, its stats) over
few frames and looks slower than it is, and a slow board that is not busy is not what holds the fleet back. A blip, a busy neighbour for a second, or a board that wavers around the
old figure changes nothing, so the plan cannot flap on noise. Boards never measured (a spare that runs no part)
get their fleet.yaml speed scaled into the same units by the fleet's own measured boards: the lowest of their
best figures over their fleet.yaml speeds, so an unmeasured board never looks faster than the measured boards of
its kind have shown they are (a move to it must be earned by a real slowdown, not by the noise between boards).

Pure and driven by the caller's clock, like the coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from vitfleet.placement import BoardSlot, PartLoad

SPEED_TOLERANCE = 0.25  # a measured speed within +-25 % of the trusted one is the same speed
BUSY_TO_SLOW = 0.6  # a report of a slower board counts only when it was busy at least this share of the time


@dataclass
class _Pending:
    since: float
    direction: int  # +1 faster, -1 slower, 0 for a board without a trusted figure yet
    speeds: list[float] = field(default_factory=list)


@dataclass
class BoardSpeeds:
    hold_s: float
    tolerance: float = SPEED_TOLERANCE
    trusted: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)  # the fastest trusted figure: the board unthrottled
    version: int = 0  # counts trusted changes (the coordinator re-plans on one)
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def observe(
        self,
        board: str,
        now: float,
        recent_fps: float | None,
        parts: list[int],
        loads: dict[int, PartLoad],
        busy: float | None = None,
    ) -> bool:
        """One report (`busy`: the share of its window the board was busy, None when unknown); True when it made a
        new trusted figure."""
        if recent_fps is None or recent_fps <= 0 or not parts or any(p not in loads for p in parts):
            return False  # idle, or running parts this fleet's cost model does not know: says nothing
        speed = recent_fps * sum(loads[p].cost for p in parts)
        direction = self._direction(board, speed)
        if direction < 0 and busy is not None and busy < BUSY_TO_SLOW:
            return False  # not busy enough to show it is slower: neither a change nor a confirmation
        if direction == 0 and board in self.trusted:
            self._pending.pop(board, None)
            return False
        pending = self._pending.get(board)
        if pending is None or pending.direction != direction:
            pending = self._pending[board] = _Pending(now, direction)
        pending.speeds.append(speed)
        if now - pending.since < self.hold_s or len(pending.speeds) < 2:
            return False
        self.trusted[board] = median(pending.speeds)
        self.best[board] = max(self.trusted[board], self.best.get(board, 0.0))
        del self._pending[board]
        self.version += 1
        return True

    def _direction(self, board: str, speed: float) -> int:
        trusted = self.trusted.get(board)
        if trusted is None:
            return 0
        if speed > trusted * (1 + self.tolerance):
            return 1
        if speed < trusted / (1 + self.tolerance):
            return -1
        return 0

    def slots(self, configured: dict[str, BoardSlot]) -> dict[str, BoardSlot]:
        """The boards with their speeds as trusted now (in cost units per second), memory as configured."""
        scales = [self.best[b] / s.speed for b, s in configured.items() if b in self.best and s.speed > 0]
        if not scales:
            return dict(configured)
        scale = min(scales)
        return {b: BoardSlot(b, self.trusted.get(b, s.speed * scale), s.memory_mb) for b, s in configured.items()}

    def share_of_best(self, board: str) -> float | None:
        """The board's trusted speed over its best (1.0: as fast as it has ever been), None when unmeasured."""
        if board not in self.trusted:
            return None
        return self.trusted[board] / self.best[board]
