"""Thermal zones under /sys/class/thermal: each zone's temperature and its first passive trip point.

Linux reports millidegrees Celsius in `thermal_zone<N>/temp` and names the zone in `type`; the kernel starts
throttling the CPU (cpufreq cooling) when a zone passes a `passive` trip point. The root is a parameter so tests
read sample trees written to a temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vitfleet.power.meter import MeterReadError
from vitfleet.power.sysfs import read_sysfs_int, read_sysfs_text

THERMAL_ROOT = Path("/sys/class/thermal")


@dataclass(frozen=True)
class ThermalZone:
    name: str
    temp_c: float
    passive_trip_c: float | None  # where the kernel starts slowing the CPU; None when the zone has none

    @property
    def at_trip(self) -> bool:
        return self.passive_trip_c is not None and self.temp_c >= self.passive_trip_c


def millidegrees(value: int) -> float:
    return round(value / 1000.0, 1)


def _passive_trip(zone: Path) -> float | None:
    for kind_file in sorted(zone.glob("trip_point_*_type")):
        if read_sysfs_text(kind_file) == "passive":
            try:
                return millidegrees(
                    read_sysfs_int(
                        kind_file.with_name(kind_file.name.replace("_type", "_temp")), "trip point temperature"
                    )
                )
            except MeterReadError:
                return None
    return None


def read_thermal_zones(root: Path = THERMAL_ROOT) -> list[ThermalZone]:
    """Every readable zone (a zone whose sensor is asleep or gone is skipped, not an error)."""
    zones = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            temp = millidegrees(read_sysfs_int(zone / "temp", "zone temperature"))
        except MeterReadError:
            continue
        zones.append(ThermalZone(read_sysfs_text(zone / "type") or zone.name, temp, _passive_trip(zone)))
    return zones
