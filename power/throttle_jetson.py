"""Jetson throttling through jetson-stats' jtop (optional AGPL extra, imported lazily like the jtop power meter).

jtop 4.x exposes `jetson.temperature` as {sensor: {"temp": °C, "online": bool}} (offline sensors read -256) and
`jetson.cpu["cpu"]` as a list of cores with "freq": {"cur", "max"} in kHz. A Jetson throttles by lowering clocks
(the thermal governor or a power-mode cap), so a core running below its maximum while jtop says the board is hot
is reported as throttled. Unverified on hardware: tested against a stand-in jtop object only, and said so in
every state it reports (`verified: false`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vitfleet.power.meter import MeterReadError
from vitfleet.throttle_state import ThrottleState

HOT_C = 80.0  # jtop's own warning colour starts here; Orin's software throttling begins in the 90s
CAPPED_BELOW = 0.9  # a core below this share of its maximum clock is capped


def jtop_state(temperature: Any, cpu: Any) -> ThrottleState:
    """The throttling state from jtop's `temperature` and `cpu` properties; MeterReadError for other shapes."""
    try:
        temps = [float(s["temp"]) for s in temperature.values() if s.get("online", True) and float(s["temp"]) > -100]
        cores = [c["freq"] for c in cpu["cpu"] if c.get("online", True) and c.get("freq")]
        capped = [f for f in cores if float(f["max"]) > 0 and float(f["cur"]) < CAPPED_BELOW * float(f["max"])]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise MeterReadError(
            f"jtop's temperature/cpu are not in the shape jetson-stats 4 documents ({exc!r})"
        ) from None
    hottest = max(temps, default=None)
    reasons = []
    if hottest is not None and hottest >= HOT_C:
        reasons.append(f"hot ({hottest:.0f} °C)")
    if capped:
        reasons.append(f"{len(capped)} of {len(cores)} cores below {CAPPED_BELOW:.0%} of their maximum clock")
    return ThrottleState(
        source="jtop",
        throttled=bool(capped) and hottest is not None and hottest >= HOT_C,
        reasons=reasons,
        temp_c=hottest,
        verified=False,
    )


class JtopThrottleReader:
    source = "jtop"

    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        from vitfleet.power.jetson_jtop import default_jtop

        self._jetson = (factory or default_jtop)()
        self._jetson.start()

    def read(self) -> ThrottleState:
        return jtop_state(self._jetson.temperature, self._jetson.cpu)

    def close(self) -> None:
        self._jetson.close()
