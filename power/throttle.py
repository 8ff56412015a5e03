"""The one interface every throttling reader implements, and which reader a board kind gets.

Pi: `vcgencmd get_throttled` plus thermal zones (power/throttle_pi.py); Jetson: jtop (power/throttle_jetson.py,
unverified on hardware), falling back to thermal zones; elsewhere: thermal zones when the machine has any. The
agent adds its measured speed ratio to whatever the reader says (power/throttle_measured.py). Every root, command
runner and jtop factory can be replaced, so tests read recorded samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from vitfleet.power.meter import MeterReadError
from vitfleet.power.rpi5_pmic import RunCommand, run_vcgencmd
from vitfleet.power.thermal_zones import THERMAL_ROOT, read_thermal_zones
from vitfleet.power.throttle_jetson import JtopThrottleReader
from vitfleet.power.throttle_pi import PiThrottleReader
from vitfleet.throttle_state import ThrottleState

log = logging.getLogger(__name__)


class ThrottleReader(Protocol):
    source: str

    def read(self) -> ThrottleState:
        """The state now; raises MeterReadError when the reading failed."""
        ...


class ThermalThrottleReader:
    """Thermal zones alone: throttled while a zone is at or past its passive trip point."""

    source = "thermal"

    def __init__(self, root: Path = THERMAL_ROOT) -> None:
        self._root = root

    def read(self) -> ThrottleState:
        zones = read_thermal_zones(self._root)
        hot = [f"{z.name} at {z.temp_c:.0f} °C (passive trip {z.passive_trip_c:.0f} °C)" for z in zones if z.at_trip]
        hottest = max((z.temp_c for z in zones), default=None)
        return ThrottleState(source="thermal" if zones else "none", throttled=bool(hot), reasons=hot, temp_c=hottest)


def throttle_reader(
    board_kind: str,
    thermal_root: Path = THERMAL_ROOT,
    run_command: RunCommand = run_vcgencmd,
    jtop_factory: Callable[[], Any] | None = None,
) -> ThrottleReader:
    """The reader for this kind of board; never raises (a board with no sensor gets the thermal reader, which
    reports `none` when there are no zones either)."""
    if board_kind in ("pi4", "pi5"):
        return PiThrottleReader(run_command, thermal_root)
    if board_kind.startswith("jetson"):
        try:
            return JtopThrottleReader(jtop_factory)
        except Exception as exc:  # noqa: BLE001 - jtop missing or its service down: thermal zones still tell
            log.info("jtop unavailable for throttling (%s); reading thermal zones", exc)
    return ThermalThrottleReader(thermal_root)


def read_or_none(reader: ThrottleReader) -> ThrottleState | None:
    """One reading, None (logged) when it failed: a sensor hiccup must not stop the stats."""
    try:
        return reader.read()
    except MeterReadError as exc:
        log.warning("throttling state unreadable (%s): %s", reader.source, exc)
        return None
