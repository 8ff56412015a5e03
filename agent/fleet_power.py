"""The aggregator's view of the fleet's power: latest snapshot per board, fleet watts, mJ per prediction."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

STALE_S = 5.0


def parse_power(payload: bytes) -> dict[str, Any]:
    """A boards/<board>/power payload -> dict; ValueError when malformed."""
    try:
        from power.sampler import PowerSnapshot  # the power component owns the format
    except ImportError:
        PowerSnapshot = None  # noqa: N806
    if PowerSnapshot is not None:
        snap = PowerSnapshot.from_json(bytes(payload))
        return {k: getattr(snap, k) for k in ("ts", "watts", "joules", "frames", "source", "estimated")}
    try:
        data = json.loads(bytes(payload))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"power payload is not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), (int, float)) for k in ("watts", "joules")):
        raise ValueError("power payload needs numeric watts and joules")
    return data


class FleetPower:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latest: dict[str, tuple[float, dict[str, Any]]] = {}   # board -> (monotonic, snapshot)
        self.first: dict[str, dict[str, Any]] = {}
        self._predictions_at_start: int | None = None
        self._predictions_now = 0

    def update(self, board: str, payload: bytes, arrival_ns: int) -> dict[str, Any]:
        snap = parse_power(payload)
        with self._lock:
            self.latest[board] = (time.monotonic(), snap)
            self.first.setdefault(board, snap)
            if self._predictions_at_start is None:
                self._predictions_at_start = self._predictions_now
        return snap

    def summary(self, predictions: int) -> dict[str, Any]:
        with self._lock:
            self._predictions_now = predictions
            now = time.monotonic()
            fresh = {b: s for b, (t, s) in self.latest.items() if now - t < STALE_S}
            if not fresh:
                return {"fleet_watts": None, "mj_per_frame": None, "power_estimated": None}
            watts = sum(float(s.get("watts") or 0.0) for s in fresh.values())
            joules = sum(float(self.latest[b][1].get("joules") or 0.0) - float(self.first[b].get("joules") or 0.0)
                         for b in self.latest)
            frames = predictions - (self._predictions_at_start or 0)
            return {"fleet_watts": round(watts, 3),
                    "mj_per_frame": round(1000.0 * joules / frames, 3) if frames > 0 and joules > 0 else None,
                    "power_estimated": any(bool(s.get("estimated")) for s in fresh.values())}
