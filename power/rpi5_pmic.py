"""Raspberry Pi 5 power from its PMIC's ADCs: `vcgencmd pmic_read_adc`, summed V x I over rails.

Output format (one channel per line, names end in _A for current and _V for voltage; the
channel numbers of a rail's current and voltage differ, so rails pair by name):
     VDD_CORE_A current(7)=0.75012000A
     VDD_CORE_V volt(15)=0.89745940V
     EXT5V_V volt(24)=5.06788000V
Recorded captures: jfikar/RPi5-power README, ml-energy/zeus tests/device/machine/test_rpi.py
(both Pi 5 Model B); see tests/data/power/vcgencmd_pmic_read_adc_*.txt.

What it covers: the PMIC's own output rails (core, DRAM, 3V3/1V8/1V1/0V8 system, HDMI, WiFi).
What it does not: the 5 V input itself (EXT5V has a voltage but no current), USB peripherals,
and the PMIC's conversion losses, so it reads below a USB-C meter (jfikar measured
wall = 1.13 x PMIC + 0.64 W). A read spawns a process (~10-20 ms of CPU on a Pi), so the meter
asks the sampler for at most 4 reads per second.
Unverified on hardware: tested on recorded outputs only.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable

RunCommand = Callable[[Sequence[str]], str]
PMIC_COMMAND = ("vcgencmd", "pmic_read_adc")
_CHANNEL = re.compile(
    r"^\s*(?P<rail>\S+)_(?P<suffix>[AV])\s+(?P<kind>current|volt)\(\d+\)="
    r"(?P<value>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?P<unit>[AV])\s*$"
)


def run_vcgencmd(command: Sequence[str], timeout_s: float = 2.0) -> str:
    """Run vcgencmd and return its stdout; every failure becomes a MeterReadError that says why."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise MeterReadError(
            f"{command[0]} is not installed (Raspberry Pi OS ships it; elsewhere: apt install raspi-utils)"
        ) from None
    except PermissionError:
        raise MeterReadError(f"{command[0]} is not executable by this user") from None
    except subprocess.TimeoutExpired:
        raise MeterReadError(f"{' '.join(command)} did not answer within {timeout_s:g} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[:200]
        hint = " (add the user to the 'video' group for /dev/vcio)" if "vcio" in said or "VCHI" in said else ""
        raise MeterReadError(f"{' '.join(command)} exited with code {done.returncode}: {said}{hint}")
    return done.stdout


def parse_pmic_read_adc(text: str) -> dict[str, float]:
    """{rail: watts} for every rail with both a current and a voltage line; garbage lines are ignored."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    # The mailbox answer can come NUL-separated instead of newline-separated (noted in zeus' tests).
    for line in re.split(r"[\n\x00]", text):
        m = _CHANNEL.match(line)
        if m is None:
            continue
        suffix, kind, unit = m.group("suffix"), m.group("kind"), m.group("unit")
        if (suffix, kind, unit) == ("A", "current", "A"):
            amps[m.group("rail")] = float(m.group("value"))
        elif (suffix, kind, unit) == ("V", "volt", "V"):
            volts[m.group("rail")] = float(m.group("value"))
    return {rail: max(amps[rail], 0.0) * volts[rail] for rail in sorted(amps.keys() & volts.keys())}


def pmic_watts(text: str) -> float:
    rails = parse_pmic_read_adc(text)
    if not rails:
        raise MeterReadError(
            f"`vcgencmd pmic_read_adc` printed no rail with both current and voltage "
            f"(got {text.strip()[:80]!r}); only the Raspberry Pi 5 has this PMIC ADC"
        )
    return sum(rails.values())


class Rpi5PmicMeter(Meter):
    estimated = False
    source = "rpi5-pmic"
    min_interval_s = 0.25

    def __init__(self, run_command: RunCommand = run_vcgencmd) -> None:
        self._run = run_command
        try:
            text = self._run(PMIC_COMMAND)
            rails = parse_pmic_read_adc(text)
            pmic_watts(text)
        except MeterReadError as exc:
            raise MeterUnavailable(str(exc)) from None
        self.detail = (
            f"sum of {len(rails)} PMIC rails ({', '.join(rails)}); excludes the 5 V input's "
            "USB load and conversion losses, so it reads below a wall meter"
        )

    def read(self) -> float:
        return pmic_watts(self._run(PMIC_COMMAND))
