"""Raspberry Pi throttling: `vcgencmd get_throttled` and the SoC's thermal zone.

The firmware answers `throttled=0x50005`: a bit field whose low bits say what holds now and whose bits 16-19 say
what happened since boot (Raspberry Pi documentation, "vcgencmd get_throttled"). Only the "now" bits make a board
slow now; the "since boot" ones are reported for the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vitfleet.power.meter import MeterReadError
from vitfleet.power.rpi5_pmic import RunCommand, run_vcgencmd
from vitfleet.power.thermal_zones import THERMAL_ROOT, read_thermal_zones
from vitfleet.throttle_state import ThrottleState

GET_THROTTLED = ("vcgencmd", "get_throttled")
NOW_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now", 3: "soft temperature limit now"}
SINCE_BOOT_BITS = {
    16: "under-voltage since boot",
    17: "ARM frequency capped since boot",
    18: "throttled since boot",
    19: "soft temperature limit since boot",
}
_ANSWER = re.compile(r"^\s*throttled=(0x[0-9a-fA-F]+|\d+)\s*$")


@dataclass(frozen=True)
class ThrottledBits:
    value: int

    @property
    def now(self) -> list[str]:
        return [why for bit, why in NOW_BITS.items() if self.value >> bit & 1]

    @property
    def since_boot(self) -> list[str]:
        return [why for bit, why in SINCE_BOOT_BITS.items() if self.value >> bit & 1]


def parse_get_throttled(text: str) -> ThrottledBits:
    """vcgencmd's answer as bits; MeterReadError naming what came back when it is not `throttled=<hex>`."""
    match = _ANSWER.match(text)
    if match is None:
        raise MeterReadError(f"vcgencmd get_throttled answered {text.strip()[:60]!r}, expected throttled=0x...")
    return ThrottledBits(int(match.group(1), 0))


class PiThrottleReader:
    source = "vcgencmd"

    def __init__(self, run_command: RunCommand = run_vcgencmd, thermal_root: Path = THERMAL_ROOT) -> None:
        self._run, self._thermal = run_command, thermal_root

    def read(self) -> ThrottleState:
        bits = parse_get_throttled(self._run(GET_THROTTLED))
        zones = read_thermal_zones(self._thermal)
        hottest = max((z.temp_c for z in zones), default=None)
        return ThrottleState(
            source="vcgencmd", throttled=bool(bits.now), reasons=bits.now + bits.since_boot, temp_c=hottest
        )
