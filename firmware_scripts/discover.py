"""`vitfleet deploy discover`: the boards on the fleet's broker that fleet.yaml does not name, and their stanza.

Every agent publishes a retained hello (vitfleet/hello_message.py), so one subscription to boards/+/hello sees
every board that ever said hello and has not been cleared, at once. A hello that is not a valid BoardHello is
reported with one sentence saying why, never a traceback. The stanza is what fleet.yaml's `boards:` needs for the board (host, kind,
memory, measured speed), validated as a BoardConfig before it is printed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import yaml

from vitfleet.agent.mqtt_client import BrokerUnreachable, MqttLink
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.fleet_config import BoardConfig, BrokerConfig, FleetConfig
from vitfleet.hello_message import BoardHello, HelloMessageError
from vitfleet.topics import Topics


@dataclass
class Discovery:
    hellos: dict[str, BoardHello] = field(default_factory=dict)  # every board that said hello
    malformed: dict[str, str] = field(default_factory=dict)  # board -> why its hello was refused

    def unnamed(self, fleet: FleetConfig) -> list[BoardHello]:
        named = {b.name for b in fleet.boards}
        return [h for b, h in sorted(self.hellos.items()) if b not in named]


def listen(fleet: FleetConfig, login: BrokerConfig, wait_s: float) -> Discovery:
    """Every retained hello on the fleet's broker, after listening `wait_s` seconds."""
    topics = Topics(fleet.name)
    found = Discovery()

    def on_message(topic: str, payload: bytes) -> None:
        where = topics.board_of(topic)
        if where is None or where[1] != "hello" or not payload:
            return
        try:
            hello = BoardHello.from_json(payload)
        except HelloMessageError as exc:
            found.malformed[where[0]] = str(exc)
            return
        if hello.board != where[0]:
            found.malformed[where[0]] = f"its hello names another board ({hello.board!r})"
        else:
            found.hellos[hello.board] = hello

    link = MqttLink(login, fleet.name, "deploy", "discover", on_message, [(topics.all_boards("hello"), 1)])
    try:
        link.start(wait=max(wait_s, 5.0))
    except BrokerUnreachable as exc:
        raise DeployError(f"cannot reach the fleet's broker to discover boards: {exc}") from None
    try:
        time.sleep(wait_s)
    finally:
        link.stop()
    return found


def stanza(hellos: list[BoardHello]) -> str:
    """fleet.yaml's `boards:` entries for these boards (roles: agent), as YAML."""
    boards = []
    for h in hellos:
        board = BoardConfig(
            name=h.board, host=h.host or "127.0.0.1", kind=h.kind, memory_mb=h.memory_mb, speed=h.speed, roles=["agent"]
        )
        boards.append(board.model_dump(mode="json", include={"name", "host", "kind", "memory_mb", "speed", "roles"}))
    return yaml.safe_dump({"boards": boards}, sort_keys=False)


def rows(hellos: list[BoardHello]) -> list[dict[str, object]]:
    return [
        {
            "board": h.board,
            "host": h.host,
            "kind": h.kind,
            "arch": h.arch,
            "cores": h.cores,
            "memory_mb": h.memory_mb,
            "speed_gflops": h.speed,
            "parts_held": h.parts,
            "bundle": h.bundle_id,
        }
        for h in hellos
    ]
