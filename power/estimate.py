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

from vitfleet.power.board_kind import detect_board_kind
from vitfleet.power.meter import Meter, MeterUnavailable


@dataclass(frozen=True)
class PowerProfile:
    idle_w: float
    active_w_per_core: float
    basis: str


# Rough figures per BoardKind (vitfleet.fleet_config): board draw at idle, and the extra per fully
# busy core. Pi 4: 2.7 W idle, 6.4 W with 4 cores busy (Pi Dramble power tests); Pi 5 is similar
# at idle and ~1.1 W per core busier; Jetsons from idle VDD_IN in tegrastats captures; x86/cpu
# are placeholders for a small server core, since a VM's host draw cannot be known from inside.
PROFILES: dict[str, PowerProfile] = {
    "pi4": PowerProfile(2.7, 0.93, "Pi 4B: 2.7 W idle, 6.4 W at 4 busy cores (Pi Dramble bench)"),
    "pi5": PowerProfile(3.0, 1.1, "Pi 5: ~3 W idle, ~7.5 W at 4 busy cores (public bench figures)"),
    "jetson-nano": PowerProfile(2.0, 0.6, "Jetson Nano: POM_5V_IN ~2.1 W idle (tegrastats captures)"),
    "jetson-orin": PowerProfile(4.7, 0.5, "Orin Nano: VDD_IN ~4.7 W idle (tegrastats captures)"),
    "jetson-xavier": PowerProfile(3.9, 0.7, "Xavier NX: VDD_IN ~3.9 W idle (tegrastats captures)"),
    "x86": PowerProfile(10.0, 5.0, "placeholder: 10 W + 5 W per busy x86 core"),
    "cpu": PowerProfile(5.0, 3.0, "placeholder: 5 W + 3 W per busy core"),
}

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

    def __init__(self, board_kind: str | None = None, profile: PowerProfile | None = None,
                 cpu_times: CpuTimes = _per_cpu_times) -> None:
        kind = board_kind or detect_board_kind()
        if profile is None:
            if kind not in PROFILES:
                raise MeterUnavailable(f"no power profile for board kind {kind!r}; known kinds: "
                                       f"{', '.join(PROFILES)}")
            profile = PROFILES[kind]
        self.kind, self.profile = kind, profile
        self._cpu_times = cpu_times
        self._last = cpu_times()
        self.cpus = len(self._last)
        self.detail = (f"ESTIMATE, not a measurement: {kind} profile {profile.idle_w:g} W idle + "
                       f"{profile.active_w_per_core:g} W per busy core x {self.cpus} CPUs ({profile.basis})")

    def read(self) -> float:
        now = self._cpu_times()
        cores = busy_cores(self._last, now)
        self._last = now
        return estimate_watts(self.profile, cores)
