"""Jetson total input power through jetson-stats' jtop service (optional extra, AGPL-3.0).

jtop (jetson-stats >= 4) exposes `jetson.power` as {"rail": {...}, "tot": {...}} with powers in
mW; "tot" is the VDD_IN / POM_5V_IN rail when the board has one (then tot["name"] names it),
else the sum of all rails (jtop/core/power.py, total_power()). jtop needs its systemd service
(`sudo systemctl enable --now jtop.service`); off a Jetson, jtop() raises JtopException.

jetson-stats is AGPL-3.0, so it stays an optional extra (`pip install 'vitfleet[jetson]'`) and is
imported only here, lazily. Unverified on hardware: tested against a stand-in `jtop` object only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable

JtopFactory = Callable[[], Any]


def default_jtop() -> Any:
    try:
        from jtop import jtop  # lazy: optional AGPL extra, only present on Jetsons that chose it
    except ImportError:
        raise MeterUnavailable(
            "jetson-stats (jtop) is not installed; optional: pip install 'vitfleet[jetson]' "
            "(AGPL-3.0) — the INA3221 hwmon and tegrastats meters need nothing extra"
        ) from None
    return jtop()


def _milliwatts(value: Any) -> float:
    milliwatts = float(value)
    if not math.isfinite(milliwatts) or milliwatts < 0:
        raise ValueError(milliwatts)
    return milliwatts


def jtop_total(power: Any) -> tuple[float, str]:
    """(watts, rail name) from jtop's `power`; MeterReadError when it is neither shape jtop documents.

    jetson-stats 4.x: {"rail": {name: {"power": mW, ...}}, "tot": {"power": mW, "name": rail?}}.
    jetson-stats 3.x: a tuple (total, rails) with "cur" in mW, where total is the sum of every rail
    (jetson_stats issue #51), so the VDD_IN/POM_5V_IN rail is taken when present.
    """
    try:
        if isinstance(power, dict):
            total = power["tot"]
            name = total.get("name") or "sum"
            return _milliwatts(total["power"]) / 1000.0, str(name)
        total, rails = power
        for name in ("VDD_IN", "POM_5V_IN"):
            if name in rails:
                return _milliwatts(rails[name]["cur"]) / 1000.0, name
        return _milliwatts(total["cur"]) / 1000.0, "sum"
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MeterReadError(f"jtop power is not a shape this meter knows: {str(power)[:100]!r}") from None


class JtopMeter(Meter):
    estimated = False
    min_interval_s = 0.1

    def __init__(self, factory: JtopFactory = default_jtop) -> None:
        self._jetson: Any = None
        jetson = factory()
        try:
            jetson.start()
        except Exception as exc:  # jtop raises its own JtopException, which we cannot import without jtop
            raise MeterUnavailable(
                f"jtop could not connect: {exc} (enable it: sudo systemctl enable --now jtop.service)"
            ) from None
        self._jetson = jetson
        try:
            _, rail = jtop_total(jetson.power)
        except MeterReadError as exc:
            self.close()
            raise MeterUnavailable(str(exc)) from None
        self.source = f"jetson-jtop:{rail}"
        self.detail = f"jtop total input rail {rail}" if rail != "sum" else "jtop: sum of rails (no VDD_IN)"

    def read(self) -> float:
        try:
            alive = self._jetson.ok(spin=True)  # spin: report state without waiting for the next update
        except Exception as exc:  # jtop re-raises its reader thread's error here
            raise MeterReadError(f"jtop failed: {exc}") from None
        if not alive:
            raise MeterReadError("jtop service connection lost")
        return jtop_total(self._jetson.power)[0]

    def close(self) -> None:
        if self._jetson is not None:
            jetson, self._jetson = self._jetson, None
            try:
                jetson.close()
            except Exception:  # closing a dead jtop connection must not mask the real error
                pass
