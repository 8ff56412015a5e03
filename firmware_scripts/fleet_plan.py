"""`vitfleet deploy plan`: which part, engine and services go to which board.

Parts are placed with ED-ViT's greedy rule (vitfleet.placement) from the bundle's per-part
params/FLOPs and each board's memory and measured speed (`vitfleet deploy profile`). The
engine backend follows the board kind: TensorRT on Jetsons (built on the board), ONNX Runtime
everywhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from vitfleet.board_kinds import board_kind
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.fleet_config import BoardConfig, FleetConfig
from vitfleet.placement import PartCost, place_parts


@dataclass(frozen=True)
class BoardPlan:
    board: str
    host: str
    kind: str
    speed: float
    memory_mb: int
    part: int | None
    precision: str
    backend: str
    target: str
    services: tuple[str, ...]

    @property
    def builds_on_board(self) -> bool:
        """TensorRT plans depend on the exact GPU and TensorRT version, so the board builds them itself."""
        return self.backend == "tensorrt"

    def row(self) -> dict[str, object]:
        out = asdict(self)
        out["services"] = ",".join(self.services) or "-"
        out["part"] = "-" if self.part is None else self.part
        return out


@dataclass(frozen=True)
class FleetPlan:
    fleet: str
    boards: list[BoardPlan]
    broker: str
    aggregator: str | None
    camera: str | None

    def board(self, name: str) -> BoardPlan:
        for plan in self.boards:
            if plan.board == name:
                return plan
        raise DeployError(f"no board named {name!r} in the plan; boards are {', '.join(b.board for b in self.boards)}")

    @property
    def placement(self) -> dict[str, int]:
        return {b.board: b.part for b in self.boards if b.part is not None}


def part_costs(bundle_dir: Path) -> list[PartCost]:
    from vitfleet.decompose.bundle import read_bundle

    card = read_bundle(bundle_dir)
    return [PartCost(index=p.index, params=p.params, flops=p.flops) for p in card.parts]


def board_services(board: BoardConfig, part: int | None) -> tuple[str, ...]:
    services = []
    if "broker" in board.roles:
        services.append("broker")
    if part is not None:
        services.append("agent")
    services += [role for role in ("aggregator", "camera") if role in board.roles]
    return tuple(services)


def make_plan(fleet: FleetConfig, parts: list[PartCost]) -> FleetPlan:
    placement = place_parts(parts, fleet.boards)
    unknown = sorted(p for p in placement.values() if p not in {c.index for c in parts})
    if unknown:
        raise DeployError(
            f"fleet.yaml pins part(s) {unknown} but the bundle has parts 0..{len(parts) - 1}; "
            "fix the boards' `part:` entries"
        )
    boards = [
        BoardPlan(
            board=b.name,
            host=b.host,
            kind=b.kind,
            speed=b.gflops,
            memory_mb=b.memory_mb,
            part=placement.get(b.name),
            precision=b.engine_precision(),
            backend=board_kind(b.kind).backend,
            target=board_kind(b.kind).target,
            services=board_services(b, placement.get(b.name)),
        )
        for b in fleet.boards
    ]
    brokers = fleet.boards_with("broker")
    if len(brokers) > 1:
        raise DeployError(f"only one board may have role 'broker', found {', '.join(b.name for b in brokers)}")
    broker = (
        f"{brokers[0].name} ({fleet.broker.host}:{fleet.broker.port})"
        if brokers
        else f"external {fleet.broker.host}:{fleet.broker.port}"
    )
    if brokers and fleet.broker.host not in (brokers[0].host, brokers[0].name):
        raise DeployError(
            f"broker.host is {fleet.broker.host!r} but the broker board {brokers[0].name} has host "
            f"{brokers[0].host!r}; set broker.host to the address the boards reach it at"
        )
    aggregator = fleet.boards_with("aggregator")
    camera = fleet.boards_with("camera")
    return FleetPlan(
        fleet=fleet.name,
        boards=boards,
        broker=broker,
        aggregator=aggregator[0].name if aggregator else None,
        camera=camera[0].name if camera else None,
    )
