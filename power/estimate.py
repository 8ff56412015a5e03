"""The meter of last resort: power modelled from CPU utilisation, always flagged `estimated`.

watts = idle_w + active_w_per_core x busy cores, where busy cores = the sum over CPUs of the busy
share of the time since the previous read (from psutil's per-CPU time counters; this meter keeps
its own previous reading, so other psutil users do not disturb it). It knows nothing about the
GPU, the NPU, memory traffic or peripherals, and the profile figures are rough public bench
numbers, not measurements of this board: use it to compare runs on one machine, never as a
measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from vitfleet.board_kinds import board_kind_names, find_board_kind
from vitfleet.power.board_kind import detect_board_kind
from vitfleet.power.meter import Meter, MeterUnavailable


@dataclass(frozen=True)
class PowerProfile:
    idle_w: float
    active_w_per_core: float
    basis: str


def power_profile(kind: str) -> PowerProfile | None:
    """A board kind's rough figures, from its registration (vitfleet/board_kinds.py, which says where each comes
    from); None for a name no kind is registered under."""
    spec = find_board_kind(kind)
    return None if spec is None else PowerProfile(spec.idle_w, spec.active_w_per_core, spec.power_basis)


CpuTimes = Callable[[], Sequence[Any]]


def _per_cpu_times() -> Sequence[Any]:
    return psutil.cpu_times(percpu=True)


def _total(times: Any) -> float:
    # Linux counts guest time inside user/nice too; psutil's cpu_percent subtracts it the same way.
    return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def busy_cores(before: Sequence[Any], after: Sequence[Any]) -> float:
    """Sum over CPUs of the busy share between two psutil per-CPU cpu_times readings (0..number of CPUs)."""
    busy = 0.0
    for b, a in zip(before, after):
        total = _total(a) - _total(b)
        if total <= 0:
            continue
        idle = (a.idle - b.idle) + (getattr(a, "iowait", 0.0) - getattr(b, "iowait", 0.0))
        busy += min(max(1.0 - idle / total, 0.0), 1.0)
    return busy


def estimate_watts(profile: PowerProfile, cores_busy: float) -> float:
    return profile.idle_w + profile.active_w_per_core * max(cores_busy, 0.0)


class PsutilEstimateMeter(Meter):
    estimated = True
    source = "psutil-estimate"

    def __init__(
        self, board_kind: str | None = None, profile: PowerProfile | None = None, cpu_times: CpuTimes = _per_cpu_times
    ) -> None:
        kind = board_kind or detect_board_kind()
        if profile is None:
            profile = power_profile(kind)
            if profile is None:
                raise MeterUnavailable(
                    f"no power profile for board kind {kind!r}; known kinds: {', '.join(board_kind_names())}"
                )
        self.kind, self.profile = kind, profile
        self._cpu_times = cpu_times
        self._last = cpu_times()
        self.cpus = len(self._last)
        self.detail = (
            f"ESTIMATE, not a measurement: {kind} profile {profile.idle_w:g} W idle + "
            f"{profile.active_w_per_core:g} W per busy core x {self.cpus} CPUs ({profile.basis})"
        )

    def read(self) -> float:
        now = self._cpu_times()
        cores = busy_cores(self._last, now)
        self._last = now
        return estimate_watts(self.profile, cores)
