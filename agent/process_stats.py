"""CPU and memory of this process, and pinning it to one core."""

from __future__ import annotations

import logging
import os

import psutil

log = logging.getLogger("vitfleet.agent")


class ProcessStats:
    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call only sets the reference point

    def snapshot(self) -> dict[str, float]:
        return {
            "cpu_percent": round(self._proc.cpu_percent(None), 1),
            "rss_mb": round(self._proc.memory_info().rss / 2**20, 1),
        }


def pin_to_core(core: int | None) -> int | None:
    """Pin this process to one core (modulo the cores it may use); None when the OS refuses or none asked."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[core % len(allowed)]
    try:
        os.sched_setaffinity(0, {chosen})
    except OSError as exc:
        log.warning("could not pin to core %d (%s); running unpinned", chosen, exc)
        return None
    return chosen
