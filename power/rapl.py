"""x86 CPU package power from RAPL energy counters in /sys/class/powercap (Intel, and AMD Zen).

Each top-level zone /sys/class/powercap/intel-rapl:N (N = package) has `name` ("package-0"),
`energy_uj` (a counter in microjoules) and `max_energy_range_uj` (where the counter wraps to 0);
see the kernel's Documentation/power/powercap/powercap.rst. read() returns the average power since
the previous read: delta energy / delta time, summed over packages, with wrap-around undone.
It covers the CPU package(s) only: not DRAM on most parts, not disks, fans or the PSU's losses.

Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694, "PLATYPUS"); the reason
printed then carries the udev rule that grants one group read access.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable
from vitfleet.power.sysfs import read_sysfs_int, read_sysfs_text

_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")
UDEV_RULE = (
    'SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", ACTION=="add", '
    'RUN+="/bin/chgrp vitfleet /sys%p/energy_uj", RUN+="/bin/chmod g+r /sys%p/energy_uj"'
)
PERMISSION_HINT = (
    "energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694). Run as root, or put this line in "
    f"/etc/udev/rules.d/99-vitfleet-rapl.rules: {UDEV_RULE} ; then `groupadd -f vitfleet`, add the user to "
    "the group, and run `udevadm control --reload && udevadm trigger --subsystem-match=powercap`"
)


def counter_delta(before_uj: int, after_uj: int, max_range_uj: int) -> int:
    """Energy in uJ between two counter readings; a smaller second reading means the counter wrapped once."""
    if after_uj >= before_uj:
        return after_uj - before_uj
    if max_range_uj <= 0:
        raise MeterReadError(
            f"RAPL counter went backwards ({before_uj} -> {after_uj}) and max_energy_range_uj "
            f"is {max_range_uj}, so the wrap cannot be undone"
        )
    # The counter runs up to max_range and restarts at 0 (exact to one hardware energy unit, ~15-61 uJ).
    return after_uj + max_range_uj - before_uj


@dataclass(frozen=True)
class RaplZone:
    name: str
    energy: Path
    max_range_uj: int


def find_package_zones(root: Path) -> list[RaplZone]:
    base = root / "sys/class/powercap"
    if not base.is_dir():
        raise MeterUnavailable(
            f"no {base}: the kernel exposes no RAPL here (a VM, a non-x86 CPU, or the "
            "intel_rapl_msr module is not loaded)"
        )
    zones = []
    for zone in sorted(p for p in base.iterdir() if _PACKAGE_ZONE.match(p.name)):
        name = read_sysfs_text(zone / "name") or zone.name
        if not name.startswith("package"):
            continue  # psys already contains the packages; adding it would double count
        try:
            max_range = read_sysfs_int(zone / "max_energy_range_uj", "RAPL counter range, uJ")
        except MeterReadError:
            max_range = 0  # only needed to undo a wrap; read() says so if one happens
        zones.append(RaplZone(name, zone / "energy_uj", max_range))
    if not zones:
        raise MeterUnavailable(f"{base} has no intel-rapl:N package zone (RAPL driver loaded for other domains only)")
    return zones


class RaplMeter(Meter):
    estimated = False
    source = "rapl"
    min_interval_s = 0.05  # the counters update about every ms; shorter gaps are mostly rounding

    def __init__(
        self,
        root: Path = Path("/"),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.zones = find_package_zones(root)
        self._clock, self._sleep = clock, sleep
        try:
            self._last = self._read_counters()
        except PermissionError:
            raise MeterUnavailable(f"{self.zones[0].energy} is not readable: {PERMISSION_HINT}") from None
        except MeterReadError as exc:
            raise MeterUnavailable(f"RAPL zones found but unreadable: {exc}") from None
        self._last_watts = 0.0
        self.detail = f"CPU package energy of {', '.join(z.name for z in self.zones)} (not DRAM, disks or PSU)"

    def _read_counters(self) -> tuple[float, list[int]]:
        values = []
        for zone in self.zones:
            try:
                text = zone.energy.read_text()
            except PermissionError:
                raise
            except OSError as exc:
                raise MeterReadError(f"{zone.energy} could not be read: {exc.strerror or exc}") from None
            try:
                values.append(int(text.strip()))
            except ValueError:
                raise MeterReadError(f"{zone.energy} should hold an integer but holds {text.strip()[:40]!r}") from None
        return self._clock(), values

    def read(self) -> float:
        gap = self._clock() - self._last[0]
        if gap < self.min_interval_s:
            self._sleep(self.min_interval_s - gap)
        try:
            now = self._read_counters()
        except PermissionError:
            raise MeterReadError(f"{self.zones[0].energy} became unreadable: {PERMISSION_HINT}") from None
        dt = now[0] - self._last[0]
        if dt <= 0:
            return self._last_watts
        joules = (
            sum(
                counter_delta(before, after, zone.max_range_uj)
                for zone, before, after in zip(self.zones, self._last[1], now[1])
            )
            / 1e6
        )
        self._last = now
        self._last_watts = joules / dt
        return self._last_watts
