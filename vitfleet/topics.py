"""MQTT topic names of one fleet, all under vitfleet/<fleet>/ (docs/protocol.md), and the availability message.

The only place topic names are built: the fleet's processes, the broker ACL (firmware_scripts/broker_config.py)
and deploy's availability check all ask `Topics`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ROOT = "vitfleet"


class Availability(str, Enum):
    """The availability message: the retained payload of boards/<board>/available, "online" while a process is up,
    its last will "offline". A str Enum, so `status == Availability.ONLINE` also holds for the decoded text."""

    ONLINE = "online"
    OFFLINE = "offline"

    @property
    def payload(self) -> bytes:
        return self.value.encode()

    @classmethod
    def parse(cls, payload: bytes) -> Availability | None:
        """The state a payload announces, None for anything else (the caller counts it as malformed)."""
        try:
            return cls(bytes(payload).decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None


# The wire payloads, as every publisher sends them.
ONLINE, OFFLINE = Availability.ONLINE.payload, Availability.OFFLINE.payload


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

    def predictions(self, camera: str) -> str:
        """One camera's predictions (JSON, vitfleet/prediction_message.py)."""
        return f"{self.prefix}predictions/{camera}"

    @property
    def all_predictions(self) -> str:
        return f"{self.prefix}predictions/+"

    def camera_of(self, topic: str) -> str | None:
        """predictions/<camera> -> camera, None for any other topic."""
        head = f"{self.prefix}predictions/"
        tail = topic[len(head) :] if topic.startswith(head) else ""
        return tail if tail and "/" not in tail else None

    @property
    def plan(self) -> str:
        """The fleet plan (retained JSON, vitfleet/fleet_plan_message.py): which board runs which parts."""
        return f"{self.prefix}plan"

    def available(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/available"

    def stats(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/stats"

    def power(self, board: str) -> str:
        return f"{self.prefix}boards/{board}/power"

    def hello(self, board: str) -> str:
        """The board's hello (retained JSON, vitfleet/hello_message.py): what it is and what it holds."""
        return f"{self.prefix}boards/{board}/hello"

    def all_boards(self, leaf: str) -> str:
        """leaf of every board; "+" for every leaf (the aggregator's ACL)."""
        return f"{self.prefix}boards/+/{leaf}"

    def board_topics(self, board: str) -> list[str]:
        """Every topic a fleet process publishes about itself (the broker ACL grants exactly these)."""
        return [self.available(board), self.stats(board), self.power(board), self.hello(board)]

    @property
    def everything(self) -> str:
        """The whole fleet (the operator's read-only ACL line)."""
        return f"{self.prefix}#"

    def part_of(self, topic: str) -> int | None:
        """features/<part> -> part, None for any other topic or a non-numeric part."""
        head = f"{self.prefix}features/"
        if not topic.startswith(head):
            return None
        tail = topic[len(head) :]
        return int(tail) if tail.isdigit() and len(tail) < 6 else None

    def board_of(self, topic: str) -> tuple[str, str] | None:
        """boards/<board>/<leaf> -> (board, leaf), None otherwise."""
        head = f"{self.prefix}boards/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        return (parts[0], parts[1]) if len(parts) == 2 and parts[0] else None
