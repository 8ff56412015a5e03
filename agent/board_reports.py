"""What each board last said about itself (boards/<board>/available, stats, power), decoded with the message
models, for the fleet's state reader (agent/web/state.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vitfleet.agent.malformed import MalformedCounter
from vitfleet.power_message import PowerMessageError, PowerSnapshot
from vitfleet.stats_message import STATS, Stats
from vitfleet.topics import Availability


@dataclass
class BoardReports:
    malformed: MalformedCounter
    available: dict[str, Availability] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    power: dict[str, PowerSnapshot] = field(default_factory=dict)

    def take(self, topic: str, board: str, leaf: str, payload: bytes) -> bool:
        """Record one board message; False (counted as malformed) when it does not decode or the leaf is unknown.
        The caller holds its lock: this only decodes and stores."""
        if leaf == "available":
            state = Availability.parse(payload)
            if state is None:
                self.malformed.record(topic, "availability", bytes(payload[:40]).decode("utf-8", "replace"))
                return False
            self.available[board] = state
        elif leaf == "stats":
            stats = self.malformed.parse_model(topic, payload, STATS, "stats")
            if stats is None:
                return False
            self.stats[board] = stats
        elif leaf == "power":
            try:
                self.power[board] = PowerSnapshot.from_json(payload)
            except PowerMessageError as exc:
                self.malformed.record(topic, "power", str(exc))
                return False
        else:
            self.malformed.record(topic, "topic", "unexpected topic")
            return False
        return True

    def copy(self) -> BoardReports:
        """A snapshot for readers outside the lock (the models themselves are never changed once decoded)."""
        return BoardReports(self.malformed, dict(self.available), dict(self.stats), dict(self.power))
