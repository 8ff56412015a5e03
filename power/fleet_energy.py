"""Fleet power and energy per fused frame, from every board's latest power message.

Energy per frame = the sum over boards of (joules board b spent since it was first seen) /
(frames the aggregator fused since that moment), in millijoules. Each board is counted over its
own window, so a board that joins late is not charged for frames fused before it existed, and
a board that drops out keeps the energy it reported. Fleet watts sums the latest reading of each
board that reported within `stale_after_s`. The report is `estimated` when any board's is.
A board whose joules go backwards has restarted its sampler: the energy before the restart is
kept and counting continues from zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from vitfleet.power_message import PowerSnapshot


@dataclass(frozen=True)
class BoardEnergy:
    board: str
    watts: float
    joules: float  # since first seen, restarts bridged
    fused_frames: int  # frames fused since this board was first seen
    mj_per_frame: float | None
    source: str
    estimated: bool
    age_s: float
    stale: bool


@dataclass(frozen=True)
class FleetEnergyReport:
    boards: tuple[BoardEnergy, ...]
    fleet_watts: float
    fleet_joules: float
    mj_per_frame: float | None  # None until some board has seen a fused frame
    estimated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _BoardTrack:
    first: PowerSnapshot
    fused_at_first: int
    latest: PowerSnapshot
    carried_joules: float = 0.0


def energy_per_frame_mj(windows: list[tuple[float, int]]) -> float | None:
    """Sum over boards of joules / fused frames, in mJ; boards with no fused frame yet are left out."""
    counted = [(j, f) for j, f in windows if f > 0]
    if not counted:
        return None
    return sum(j / f for j, f in counted) * 1000.0


class FleetEnergy:
    def __init__(self, stale_after_s: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._boards: dict[str, _BoardTrack] = {}

    def update(self, board: str, snapshot: PowerSnapshot, fused_frames: int) -> None:
        """Record a board's power message; fused_frames is the aggregator's fused-frame count right now."""
        track = self._boards.get(board)
        if track is None:
            self._boards[board] = _BoardTrack(first=snapshot, fused_at_first=fused_frames, latest=snapshot)
            return
        if snapshot.joules < track.latest.joules:  # the board's sampler restarted
            track.carried_joules += track.latest.joules - track.first.joules
            track.first = snapshot.model_copy(update={"joules": 0.0, "frames": 0})
        track.latest = snapshot

    def report(self, fused_frames: int) -> FleetEnergyReport:
        now = self._clock()
        boards = []
        for name in sorted(self._boards):
            t = self._boards[name]
            joules = t.carried_joules + t.latest.joules - t.first.joules
            frames = max(fused_frames - t.fused_at_first, 0)
            age = max(now - t.latest.ts, 0.0)
            boards.append(
                BoardEnergy(
                    board=name,
                    watts=t.latest.watts,
                    joules=joules,
                    fused_frames=frames,
                    mj_per_frame=energy_per_frame_mj([(joules, frames)]),
                    source=t.latest.source,
                    estimated=t.latest.estimated,
                    age_s=age,
                    stale=age > self.stale_after_s,
                )
            )
        return FleetEnergyReport(
            boards=tuple(boards),
            fleet_watts=sum(b.watts for b in boards if not b.stale),
            fleet_joules=sum(b.joules for b in boards),
            mj_per_frame=energy_per_frame_mj([(b.joules, b.fused_frames) for b in boards]),
            estimated=any(b.estimated for b in boards),
        )
