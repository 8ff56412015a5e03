"""The aggregator's view of the fleet's power, on top of power.fleet_energy (which owns the arithmetic)."""

from __future__ import annotations

import threading
from typing import Any

from vitfleet.power.fleet_energy import FleetEnergy, FleetEnergyReport
from vitfleet.power_message import PowerSnapshot


class FleetPower:
    """Thread-safe: the network thread updates, the stats thread reports."""

    def __init__(self, stale_after_s: float = 5.0) -> None:
        self._energy = FleetEnergy(stale_after_s)
        self._lock = threading.Lock()

    def update(self, board: str, payload: bytes, fused_frames: int) -> PowerSnapshot:
        """Record a boards/<board>/power payload; PowerMessageError (a ValueError) when malformed."""
        snap = PowerSnapshot.from_json(bytes(payload))
        with self._lock:
            self._energy.update(board, snap, fused_frames)
        return snap

    def report(self, fused_frames: int) -> FleetEnergyReport | None:
        """None until some board has reported."""
        with self._lock:
            report = self._energy.report(fused_frames)
        return report if report.boards else None

    def summary(self, fused_frames: int) -> dict[str, Any]:
        report = self.report(fused_frames)
        if report is None:
            return {"fleet_watts": None, "mj_per_frame": None, "power_estimated": None, "board_watts": {}}
        return {
            "fleet_watts": round(report.fleet_watts, 3),
            "mj_per_frame": None if report.mj_per_frame is None else round(report.mj_per_frame, 3),
            "power_estimated": report.estimated,
            "board_watts": {b.board: round(b.watts, 3) for b in report.boards if not b.stale},
        }
