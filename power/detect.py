"""Find this board's power meter: try each kind in a fixed order, first that works wins.

Order (issue #6): Jetson (jtop, then INA3221 hwmon directly, then tegrastats), Raspberry Pi 5
PMIC, INA2xx hwmon, x86 RAPL, and last the psutil estimate, which always works and always says
it is an estimate. Every meter's sysfs root and command runner can be replaced, so tests run the
real detection over recorded trees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitfleet.power.estimate import PsutilEstimateMeter
from vitfleet.power.ina2xx_hwmon import Ina2xxHwmonMeter
from vitfleet.power.ina3221_hwmon import Ina3221HwmonMeter
from vitfleet.power.jetson_jtop import JtopFactory, JtopMeter
from vitfleet.power.meter import Meter, MeterUnavailable
from vitfleet.power.rapl import RaplMeter
from vitfleet.power.rpi5_pmic import Rpi5PmicMeter, RunCommand, run_vcgencmd
from vitfleet.power.tegrastats import TegrastatsMeter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeterProbe:
    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class MeterEnvironment:
    """Where meters look: the filesystem root, and how they run commands or reach jtop (tests swap these)."""

    root: Path = Path("/")
    run_command: RunCommand = run_vcgencmd
    tegrastats_command: Sequence[str] | None = None
    jtop_factory: JtopFactory | None = None


def _candidates(board_kind: str | None, env: MeterEnvironment) -> list[tuple[str, Callable[[], Meter]]]:
    return [
        ("jetson-jtop", lambda: JtopMeter(env.jtop_factory) if env.jtop_factory else JtopMeter()),
        ("ina3221-hwmon", lambda: Ina3221HwmonMeter(env.root)),
        ("tegrastats", lambda: TegrastatsMeter(env.tegrastats_command)),
        ("rpi5-pmic", lambda: Rpi5PmicMeter(env.run_command)),
        ("ina2xx-hwmon", lambda: Ina2xxHwmonMeter(env.root)),
        ("rapl", lambda: RaplMeter(env.root)),
        ("psutil-estimate", lambda: PsutilEstimateMeter(board_kind)),
    ]


def _try(name: str, build: Callable[[], Meter]) -> tuple[Meter | None, str]:
    try:
        return build(), ""
    except MeterUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # a meter must never take detection down; say what broke and move on
        log.warning("power meter %s failed while probing: %r", name, exc)
        return None, f"probe failed unexpectedly: {type(exc).__name__}: {exc}"


def probe_meters(board_kind: str | None = None, env: MeterEnvironment | None = None) -> list[MeterProbe]:
    """Every meter in detection order, whether it works here, and why (or what it would measure)."""
    probes = []
    for name, build in _candidates(board_kind, env or MeterEnvironment()):
        meter, reason = _try(name, build)
        if meter is not None:
            flag = "estimated" if meter.estimated else "measured"
            probes.append(MeterProbe(name, True, f"{flag}: {meter.source} — {meter.detail}"))
            meter.close()
        else:
            probes.append(MeterProbe(name, False, reason))
    return probes


def detect_meter(board_kind: str | None = None, env: MeterEnvironment | None = None) -> Meter:
    """The first meter that works here; the psutil estimate is always last and always works."""
    reasons = []
    for name, build in _candidates(board_kind, env or MeterEnvironment()):
        meter, reason = _try(name, build)
        if meter is not None:
            if reasons:
                log.info("power meter %s (%s); skipped: %s", meter.source, meter.detail, "; ".join(reasons))
            return meter
        reasons.append(f"{name}: {reason}")
    raise MeterUnavailable("no power meter works here, not even the estimate: " + "; ".join(reasons))
