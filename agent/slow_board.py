"""Emulating a board N times slower than this machine by staying busy longer (`vitfleet demo --slow-agent N`,
`vitfleet agent --emulate-slowdown N`).

Where a test or bench wants a slower board and runs as root, the lab's CPU quota is the real thing
(vitfleet.lab.quota_fleet: the agent in its own cgroup with `cpu.cfs_quota_us`, changeable mid-run with
`set_cores`): the whole agent -- inference, JPEG decode, MQTT -- gets less CPU, as on a slower board, instead of
sleeping after a full-speed inference. This emulation stays because it earns its place where the quota cannot go:
`vitfleet demo` and the board runtime run without root and may not import the workstation-side lab, and a user's
one-machine demo of a heterogeneous fleet needs neither cgroups nor namespaces.

The extra busy time scales the median of recent frames' compute, not each frame's own: on a shared machine one
frame's scheduler stall (say 20 ms) would otherwise be multiplied with it (x12: 240 ms, past the aggregator's
200-ms deadline floor), a stall a real slow board does not have. A steady change in the engine's speed still
moves the median within a few frames.
"""

from __future__ import annotations

from vitfleet.agent.rolling import RollingLatency


class SlowBoardEmulation:
    def __init__(self, slowdown: float, window: int = 31) -> None:
        if slowdown < 1.0:
            raise ValueError(f"slowdown must be >= 1 (1 = this machine's own speed), got {slowdown}")
        self.slowdown = slowdown
        self._compute_ms = RollingLatency(window)

    @property
    def active(self) -> bool:
        return self.slowdown > 1.0

    def extra_seconds(self, compute_s: float) -> float:
        """How much longer to stay busy after a part took `compute_s` here."""
        if not self.active:
            return 0.0
        self._compute_ms.add(compute_s * 1e3)
        typical_ms = self._compute_ms.percentile(50) or 0.0
        return (self.slowdown - 1.0) * typical_ms / 1e3
