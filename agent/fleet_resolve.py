"""Which fleet, broker and board a process belongs to: from fleet.yaml, or from flags alone."""

from __future__ import annotations

from pathlib import Path

from vitfleet.errors import UserError
from vitfleet.fleet_config import BoardConfig, BrokerConfig, FleetConfig, load_fleet


class FleetOptionError(UserError):
    """Flags that do not name a fleet, board or broker consistently."""


def parse_broker(text: str) -> BrokerConfig:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise FleetOptionError(f"--broker {text!r} must be HOST:PORT, e.g. 127.0.0.1:1883")
    return BrokerConfig(host=host, port=int(port))


def resolve_fleet(
    fleet_file: Path | None,
    broker: str | None,
    fleet_name: str | None,
    board: str | None,
    role: str,
    part: int | None = None,
) -> FleetConfig:
    """fleet.yaml when given (flags override its broker/name), else a one-board fleet built from the flags."""
    if fleet_file is not None:
        fleet = load_fleet(fleet_file)
        if broker:
            fleet.broker = parse_broker(broker)
        if fleet_name:
            fleet.name = fleet_name
        return fleet
    if not broker:
        raise FleetOptionError(
            f"vitfleet {role} needs --fleet fleet.yaml, or --broker HOST:PORT (with --board and, for agents, --part)"
        )
    name = board or role
    return FleetConfig(
        name=fleet_name or "demo", broker=parse_broker(broker), boards=[BoardConfig(name=name, roles=[role], part=part)]
    )  # type: ignore[list-item]


def board_for(fleet: FleetConfig, board: str | None, role: str) -> BoardConfig:
    if board:
        return fleet.board(board)
    holders = fleet.boards_with(role)  # type: ignore[arg-type]
    if len(holders) == 1:
        return holders[0]
    raise FleetOptionError(
        f"say which board this {role} is with --board (boards with role {role}: "
        f"{', '.join(b.name for b in holders) or 'none'})"
    )


def part_for(
    fleet: FleetConfig, board: BoardConfig, num_parts: int, override: int | None = None, allow_spare: bool = False
) -> int | None:
    """The part this board runs: --part, else the board's `part`, else its rank among the agent boards.

    With `allow_spare` (self-healing on), a board ranked beyond the parts is a spare: None, no part until the
    fleet plan gives it one."""
    if override is not None:
        part = override
    elif board.part is not None:
        part = board.part
    else:
        agents = [b.name for b in fleet.boards_with("agent")]
        if board.name not in agents:
            raise FleetOptionError(f"board {board.name} has no 'agent' role in the fleet file; add it to its roles")
        part = agents.index(board.name)
        if allow_spare and part >= num_parts:
            return None
    if not 0 <= part < num_parts:
        raise FleetOptionError(
            f"board {board.name} would run part {part}, but the engines have {num_parts} parts "
            f"(0..{num_parts - 1}); set boards[].part in the fleet file"
        )
    return part
