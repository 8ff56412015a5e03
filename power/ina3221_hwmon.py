"""Jetson onboard INA3221 monitors read straight from the Linux ina3221 hwmon driver (JetPack 5/6).

Layout (kernel Documentation/hwmon/ina3221.rst): per channel N in 1..3, `inN_label` (rail name,
e.g. VDD_IN), `inN_input` bus voltage in mV, `currN_input` current in mA. Channel 7 is the
"sum of shunt voltages", not a rail. On Jetson the device sits at
/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonK/ (e.g. 1-0040 on Orin Nano, whose in1 is
VDD_IN). Rails labelled "NC" are not connected (Orin module design guides).

When a total-input rail exists (VDD_IN on Orin/Xavier NX, POM_5V_IN on Nano) it is the board's
draw on its own; the others are sub-rails of it and must not be added (NVIDIA forum answer cited
by jetson-stats' power.py). Without one (AGX Orin: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, ...)
the rails are summed, as jtop does, and `detail` says so.

Unverified on hardware: written against the kernel's documented layout and tested on recorded trees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable
from vitfleet.power.sysfs import read_sysfs_int, read_sysfs_text

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
HWMON_GLOB = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
_CHANNEL_LABEL = re.compile(r"^in([1-3])_label$")


@dataclass(frozen=True)
class Ina3221Rail:
    label: str
    volt_mv: Path
    curr_ma: Path

    def watts(self) -> float:
        volts = read_sysfs_int(self.volt_mv, f"{self.label} bus voltage, mV")
        amps = read_sysfs_int(self.curr_ma, f"{self.label} current, mA")
        # A rail near idle can read a few mA below zero (shunt offset); it does not push power back.
        return max(volts * amps, 0) / 1e6


def find_rails(root: Path) -> list[Ina3221Rail]:
    rails = []
    for hwmon in sorted(root.glob(HWMON_GLOB)):
        device = hwmon.parent.parent.name
        channels = sorted(int(m.group(1)) for p in hwmon.iterdir() if (m := _CHANNEL_LABEL.match(p.name)))
        for n in channels:
            label = read_sysfs_text(hwmon / f"in{n}_label") or f"{device}:in{n}"
            if label.upper() == "NC" or label.upper().startswith("NC "):
                continue
            volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
            if volt.exists() and curr.exists():
                rails.append(Ina3221Rail(label, volt, curr))
    return rails


class Ina3221HwmonMeter(Meter):
    estimated = False

    def __init__(self, root: Path = Path("/")) -> None:
        base = root / "sys/bus/i2c/drivers/ina3221"
        if not base.is_dir():
            raise MeterUnavailable(
                f"no {base} (not a Jetson on JetPack 5/6; JetPack 4 uses the ina3221x iio "
                "driver, which jtop and tegrastats cover)"
            )
        rails = find_rails(root)
        if not rails:
            raise MeterUnavailable(f"{base} has no hwmon channel with inN_input and currN_input")
        total = next((r for name in TOTAL_RAILS for r in rails if r.label == name), None)
        if total is not None:
            self.rails = [total]
            self.source = f"ina3221-hwmon:{total.label}"
            self.detail = f"total input rail {total.label} ({total.volt_mv.parent})"
        else:
            self.rails = rails
            self.source = "ina3221-hwmon:sum"
            self.detail = (
                "no VDD_IN/POM_5V_IN rail; sum of module rails "
                + ", ".join(r.label for r in rails)
                + " (excludes carrier-board losses)"
            )
        try:
            self.read()
        except MeterReadError as exc:
            raise MeterUnavailable(f"INA3221 rails found but unreadable: {exc}") from None

    def read(self) -> float:
        return sum(rail.watts() for rail in self.rails)
