"""Find this board's power meter: try each registered meter in detection order, first that works wins.

The order is the registry's (power/meter_registry.py; the kit's own in power/builtin_meters.py): the most direct
reading first, and last the psutil estimate, which always works and always says it is an estimate. Every meter's
sysfs root and command runner come from a MeterEnvironment that can be replaced, so tests run the real detection
over recorded trees. Plugins register their meters through this module (`register_meter`), after the kit's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vitfleet.power import builtin_meters  # noqa: F401 - the kit's own meters register themselves, first
from vitfleet.power.meter import Meter, MeterUnavailable
from vitfleet.power.meter_registry import (
    MeterEnvironment,
    MeterKind,
    meter_kinds,
    meter_names,
    meters_help,
    register_meter,
)

# The registry's names, with the kit's own meters registered (the import above): a plugin that registers its
# meter through this module is tried after them.
__all__ = [
    "MeterEnvironment",
    "MeterKind",
    "MeterProbe",
    "detect_meter",
    "meter_kinds",
    "meter_names",
    "meters_help",
    "probe_meters",
    "register_meter",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeterProbe:
    name: str
    available: bool
    reason: str


def _try(kind: MeterKind, board_kind: str | None, env: MeterEnvironment) -> tuple[Meter | None, str]:
    try:
        return kind.build(board_kind, env), ""
    except MeterUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # a meter must never take detection down; say what broke and move on
        log.warning("power meter %s failed while probing: %r", kind.name, exc)
        return None, f"probe failed unexpectedly: {type(exc).__name__}: {exc}"


def probe_meters(board_kind: str | None = None, env: MeterEnvironment | None = None) -> list[MeterProbe]:
    """Every meter in detection order, whether it works here, and why (or what it would measure)."""
    env = env or MeterEnvironment()
    probes = []
    for kind in meter_kinds():
        meter, reason = _try(kind, board_kind, env)
        if meter is not None:
            flag = "estimated" if meter.estimated else "measured"
            probes.append(MeterProbe(kind.name, True, f"{flag}: {meter.source} — {meter.detail}"))
            meter.close()
        else:
            probes.append(MeterProbe(kind.name, False, reason))
    return probes


def detect_meter(board_kind: str | None = None, env: MeterEnvironment | None = None) -> Meter:
    """The first meter that works here; the psutil estimate is always last and always works."""
    env = env or MeterEnvironment()
    reasons = []
    for kind in meter_kinds():
        meter, reason = _try(kind, board_kind, env)
        if meter is not None:
            if reasons:
                log.info("power meter %s (%s); skipped: %s", meter.source, meter.detail, "; ".join(reasons))
            return meter
        reasons.append(f"{kind.name}: {reason}")
    raise MeterUnavailable("no power meter works here, not even the estimate: " + "; ".join(reasons))
