"""MQTT topic names of one fleet, all under vitfleet/<fleet>/ (docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "vitfleet"
# Retained payloads of boards/<board>/available: "online" when a process is up, its last will "offline".
ONLINE, OFFLINE = b"online", b"offline"


@dataclass(frozen=True)
class Topics:
    fleet: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.fleet}/"

    @property
    def frames(self) -> str:
        return f"{self.prefix}frames"

    def features(self, part: int) -> str:
        return f"{self.prefix}features/{part}"

    @property
    def all_features(self) -> str:
        return f"{self.prefix}features/+"

    @property
    def predictions(self) -> str:
        return f"{self.prefix}predictions"

    @property
    def plan(self) -> str:
        """The fleet plan (retained JSON, agent/fleet_plan_message.py): which board runs which parts."""
        return f"{self.prefix}plan"

    def available(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/available"

    def stats(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/stats"

    def power(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/power"

    def all_boards(self, leaf: str) -> str:
        return f"{self.prefix}boards/+/{leaf}"

    def part_of(self, topic: str) -> int | None:
        """features/<part> -> part, None for any other topic or a non-numeric part."""
        head = f"{self.prefix}features/"
        if not topic.startswith(head):
            return None
        tail = topic[len(head):]
        return int(tail) if tail.isdigit() and len(tail) < 6 else None

    def board_of(self, topic: str) -> tuple[str, str] | None:
        """boards/<board>/<leaf> -> (board, leaf), None otherwise."""
        head = f"{self.prefix}boards/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        return (parts[0], parts[1]) if len(parts) == 2 and parts[0] else None
