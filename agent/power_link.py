"""The agent's side of power reporting: sample this board's meter, publish a snapshot every second.

Kept apart so the agent runs (without power figures) when no meter can be opened.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vitfleet.agent")


class PowerLink:
    def __init__(self, board_kind: str) -> None:
        self.sampler: Any = None
        try:
            from vitfleet.power.detect import detect_meter
            from vitfleet.power.sampler import PowerSampler

            self.sampler = PowerSampler(detect_meter(board_kind), rate_hz=10)
            self.sampler.start()
        except Exception as exc:  # noqa: BLE001 - no meter must never stop inference
            log.warning("no power meter for board kind %s (%s); power will not be reported", board_kind, exc)
            self.sampler = None

    def add_frames(self, n: int) -> None:
        if self.sampler is not None:
            self.sampler.add_frames(n)

    def payload(self) -> bytes | None:
        if self.sampler is None:
            return None
        try:
            return bytes(self.sampler.snapshot().to_json())
        except Exception as exc:  # noqa: BLE001
            log.warning("power snapshot failed: %s", exc)
            return None

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
