"""The kit's own power meters, registered in detection order (power/meter_registry.py).

Most direct first: Jetson (jtop, then the INA3221 hwmon directly, then tegrastats), Raspberry Pi 5 PMIC, INA2xx
hwmon, x86 RAPL, and last the psutil estimate, which always works and always says it is an estimate. Each builder
imports its meter's module when detection tries it, so listing the meters loads none of them.
"""

from __future__ import annotations

from vitfleet.power.meter import Meter
from vitfleet.power.meter_registry import MeterEnvironment, MeterKind, register_meter


def _jtop(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.jetson_jtop import JtopMeter

    return JtopMeter(env.jtop_factory) if env.jtop_factory else JtopMeter()


def _ina3221(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.ina3221_hwmon import Ina3221HwmonMeter

    return Ina3221HwmonMeter(env.root)


def _tegrastats(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.tegrastats import TegrastatsMeter

    return TegrastatsMeter(env.tegrastats_command)


def _rpi5_pmic(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.rpi5_pmic import Rpi5PmicMeter

    return Rpi5PmicMeter(env.run_command)


def _ina2xx(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.ina2xx_hwmon import Ina2xxHwmonMeter

    return Ina2xxHwmonMeter(env.root)


def _rapl(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.rapl import RaplMeter

    return RaplMeter(env.root)


def _estimate(board_kind: str | None, env: MeterEnvironment) -> Meter:
    from vitfleet.power.estimate import PsutilEstimateMeter

    return PsutilEstimateMeter(board_kind)


register_meter(MeterKind("jetson-jtop", _jtop, "Jetson input power through jetson-stats' jtop service"))
register_meter(MeterKind("ina3221-hwmon", _ina3221, "Jetson INA3221 input rail from the hwmon driver"))
register_meter(MeterKind("tegrastats", _tegrastats, "Jetson input rail from NVIDIA's tegrastats"))
register_meter(MeterKind("rpi5-pmic", _rpi5_pmic, "Raspberry Pi 5 PMIC rails, vcgencmd pmic_read_adc"))
register_meter(MeterKind("ina2xx-hwmon", _ina2xx, "an INA219/INA226/INA260 board from the hwmon driver"))
register_meter(MeterKind("rapl", _rapl, "x86 CPU package energy counters in /sys/class/powercap"))
register_meter(
    MeterKind(
        "psutil-estimate",
        _estimate,
        "ESTIMATE from CPU use and the board kind's rough profile; always works",
        last_resort=True,
    )
)
