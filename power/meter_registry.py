"""The power-meter registry: one record per meter, and the one place detection and `vitfleet power` ask.

A meter is a module that calls `register_meter` with its name, how to build it here (raising MeterUnavailable,
with the reason, where it cannot read anything) and what `--help` says about it. Registration order is detection
order: the first meter that builds wins, and a last-resort meter (the psutil estimate, which always works) is
tried after every other, whatever the order it was registered in. The kit's own are registered in
power/builtin_meters.py; one from outside the kit is loaded as a plugin (vitfleet/plugins.py) and imports these
names from vitfleet.power.detect, which registers the kit's own first, so a plugin's meter is tried after them.
Builders import their meter's module when detection tries it, so listing the meters costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vitfleet.power.rpi5_pmic import RunCommand, run_vcgencmd
from vitfleet.registry import HYPHENATED, Registry

if TYPE_CHECKING:
    from vitfleet.power.jetson_jtop import JtopFactory
    from vitfleet.power.meter import Meter


@dataclass(frozen=True)
class MeterEnvironment:
    """Where meters look: the filesystem root, and how they run commands or reach jtop (tests swap these)."""

    root: Path = Path("/")
    run_command: RunCommand = run_vcgencmd
    tegrastats_command: Sequence[str] | None = None
    jtop_factory: JtopFactory | None = None


@dataclass(frozen=True)
class MeterKind:
    name: str  # what `vitfleet power --list` and the logs call it
    # (board kind, or None to detect it; where to look) -> a meter that reads here, or MeterUnavailable saying why
    build: Callable[[str | None, MeterEnvironment], Meter]
    summary: str  # what it reads, for --help
    last_resort: bool = False  # always works (an estimate): tried after every meter that measures


# A meter's name is a CLI and log word.
_METERS: Registry[MeterKind] = Registry(
    "power meter", lambda k: k.name, HYPHENATED, "lower-case letters and digits joined by hyphens"
)


register_meter = _METERS.register  # a meter of the same name is replaced where it stands in the order


def meter_kinds() -> list[MeterKind]:
    """Registered meters in detection order: registration order, last-resort meters after all others."""
    kinds = _METERS.records()
    return [k for k in kinds if not k.last_resort] + [k for k in kinds if k.last_resort]


def meter_names() -> list[str]:
    """Registered meters' names in detection order."""
    return [kind.name for kind in meter_kinds()]


def meters_help() -> str:
    """One entry per registered meter, in detection order, for `vitfleet power --help`."""
    return "; ".join(f"{kind.name} ({kind.summary})" for kind in meter_kinds())
