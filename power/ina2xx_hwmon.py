"""INA219/INA226/INA260-style boards (any Pi, any Linux box) through the Linux ina2xx hwmon driver.

Layout (kernel Documentation/hwmon/ina2xx.rst): /sys/class/hwmon/hwmonK/name is the chip
("ina219", "ina226", ...); `power1_input` is power in microwatts, `in1_input` the bus voltage in
mV and `curr1_input` the current in mA (`in0_input` is the shunt drop, not the supply). The
chip's own power register is preferred; without it, V x I. The sensor must be wired in series
with the board's supply for the figure to be the board's draw: which sensor that is cannot be
seen from software, so with several sensors the first is used and `detail` names it.

Unverified on hardware: tested on recorded sysfs trees only.
"""

from __future__ import annotations

from pathlib import Path

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable
from vitfleet.power.sysfs import read_sysfs_int, read_sysfs_text

# The chips the ina2xx driver binds (docs.kernel.org/hwmon/ina2xx.html).
INA2XX_CHIPS = frozenset({"ina219", "ina220", "ina226", "ina230", "ina231", "ina260", "sy24655"})


def find_ina2xx(root: Path) -> list[tuple[Path, str]]:
    found = []
    for hwmon in sorted((root / "sys/class/hwmon").glob("hwmon*")):
        chip = read_sysfs_text(hwmon / "name")
        if chip in INA2XX_CHIPS:
            found.append((hwmon, chip))
    return found


class Ina2xxHwmonMeter(Meter):
    estimated = False

    def __init__(self, root: Path = Path("/")) -> None:
        sensors = find_ina2xx(root)
        if not sensors:
            raise MeterUnavailable(
                "no INA219/INA226/INA260 under /sys/class/hwmon (wire one in the supply line "
                "and load the driver, e.g. dtoverlay=i2c-sensor,ina219 on a Pi)"
            )
        self.hwmon, chip = sensors[0]
        self.use_power_register = (self.hwmon / "power1_input").exists()
        if not self.use_power_register and not (
            (self.hwmon / "in1_input").exists() and (self.hwmon / "curr1_input").exists()
        ):
            raise MeterUnavailable(f"{self.hwmon} ({chip}) has neither power1_input nor in1_input + curr1_input")
        self.source = "ina2xx-hwmon"
        others = f"; also found {', '.join(f'{p.name} ({c})' for p, c in sensors[1:])}" if len(sensors) > 1 else ""
        self.detail = (
            f"{chip} at {self.hwmon} "
            f"({'power register' if self.use_power_register else 'bus voltage x current'}){others}"
        )
        try:
            self.read()
        except MeterReadError as exc:
            raise MeterUnavailable(f"{chip} found but unreadable: {exc}") from None

    def read(self) -> float:
        if self.use_power_register:
            return read_sysfs_int(self.hwmon / "power1_input", "power, uW") / 1e6
        volts_mv = read_sysfs_int(self.hwmon / "in1_input", "bus voltage, mV")
        amps_ma = read_sysfs_int(self.hwmon / "curr1_input", "current, mA")
        return max(volts_mv * amps_ma, 0) / 1e6
