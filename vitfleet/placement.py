"""Which board runs which parts: ED-ViT's greedy rule, the one placement decompose, deploy and the agents use.

`place` is the rule:

- parts in `keep` stay where they are while they still fit (moving a part costs a load and a fetch);
- every other part, most expensive first (ED-ViT's order), goes to the board that would finish its frame
  earliest with it -- (work already hosted + this part) / speed -- among the boards with memory left for it, a
  free slot (`parts_per_board`) and that have not refused it; ties go to the faster board (ED-ViT: the fastest
  free board), then to the board listed first;
- a part no board can hold stays unplaced, with a Shortfall saying how much memory it needed.

`place_parts` is its one-part-per-board case for decompose (sizing parts to a fleet) and deploy (`vitfleet
deploy plan`): fleet.yaml's pinned `part:` entries are kept as written and the rest are placed with
parts_per_board=1, so each part goes to the fastest free board with enough memory. The agents' coordinator
calls `place` directly to heal a fleet that lost a board (several parts per survivor). When a part fits no
board, decompose prunes it harder and retries; deploy only reports.

A board's memory holds the agent process (RUNTIME_OVERHEAD_MB, dominated by ONNX Runtime itself, not the
weights) plus every hosted part's session. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from vitfleet.errors import UserError
from vitfleet.fleet_config import BoardConfig

# Runtime memory of an ONNX Runtime part is dominated by the runtime itself, not the weights.
RUNTIME_OVERHEAD_MB = 120.0
BYTES_PER_PARAM_AT_RUNTIME = 4 * 3  # fp32 weights + arena copies, a deliberately safe factor


class PlacementError(UserError):
    """A sub-model fits no board; the message says which and by how much."""

    def __init__(self, message: str, part: int | None = None, available_mb: float | None = None) -> None:
        super().__init__(message)
        self.part, self.available_mb = part, available_mb


@dataclass(frozen=True)
class PartLoad:
    index: int
    cost: float  # compute per frame, in any unit shared by all parts (FLOPs, or engine bytes)
    memory_mb: float  # the part's own session, without the agent process


@dataclass(frozen=True)
class BoardSlot:
    name: str
    speed: float  # GFLOP/s (fleet.yaml `speed`, measured by `vitfleet deploy profile`)
    memory_mb: float


@dataclass(frozen=True)
class Shortfall:
    """Why a part stayed unplaced: callers word it for their user (decompose prunes, the coordinator degrades)."""

    part: int
    needed_mb: float  # the part's own memory
    reason: Literal["no-board", "refused", "memory"]  # no board with a free slot / all refused it / no room
    room_mb: float = 0.0  # with "memory": the most memory left on a board that could otherwise take it


@dataclass
class Placement:
    assignments: dict[str, list[int]]
    unplaced: list[int] = field(default_factory=list)
    shortfalls: list[Shortfall] = field(default_factory=list)  # in placement order: the first is the worst part


def greedy_order(load: PartLoad) -> tuple[float, int]:
    """ED-ViT's order: the most expensive part first (then by index, so equal parts place reproducibly)."""
    return -load.cost, load.index


def board_time(parts: list[int], board: BoardSlot, loads: dict[int, PartLoad]) -> float:
    return sum(loads[p].cost for p in parts) / board.speed


def makespan(assignments: dict[str, list[int]], boards: dict[str, BoardSlot], loads: dict[int, PartLoad]) -> float:
    """The fleet's critical path per frame: the busiest board's hosted work over its speed."""
    times = [board_time(parts, boards[b], loads) for b, parts in assignments.items() if b in boards and parts]
    return max(times, default=0.0)


def memory_used(parts: list[int], loads: dict[int, PartLoad]) -> float:
    return RUNTIME_OVERHEAD_MB + sum(loads[p].memory_mb for p in parts)


def place(
    loads: dict[int, PartLoad],
    boards: list[BoardSlot],
    keep: dict[str, list[int]] | None = None,
    refused: Collection[tuple[str, int]] = frozenset(),
    parts_per_board: int | None = None,
) -> Placement:
    """Every part in `loads` onto `boards`, keeping `keep` where it still fits; `refused` (board, part) pairs are
    never used; `parts_per_board` caps how many parts one board hosts (None: memory is the only limit)."""
    by_name = {b.name: b for b in boards}
    hosted: dict[str, list[int]] = {b.name: [] for b in boards}

    def fits(board: BoardSlot, part: int) -> bool:
        return (board.name, part) not in refused and memory_used(hosted[board.name] + [part], loads) <= board.memory_mb

    placed: set[int] = set()
    for name, parts in (keep or {}).items():
        if name not in by_name:
            continue
        for p in sorted(parts):
            if p in loads and p not in placed and _has_slot(hosted[name], parts_per_board) and fits(by_name[name], p):
                hosted[name].append(p)
                placed.add(p)
    result = Placement(assignments=hosted)
    for load in sorted((loads[p] for p in loads if p not in placed), key=greedy_order):
        open_boards = [b for b in boards if _has_slot(hosted[b.name], parts_per_board)]
        fitting = [b for b in open_boards if fits(b, load.index)]
        if not fitting:
            result.unplaced.append(load.index)
            result.shortfalls.append(_shortfall(load, open_boards, hosted, loads, refused))
            continue
        # The listed position breaks the last tie: decompose and deploy list boards in fleet.yaml order (the
        # first listed of equal boards takes the heavier part), the coordinator lists live boards by name.
        best = min(
            range(len(fitting)),
            key=lambda i: (
                board_time(hosted[fitting[i].name], fitting[i], loads) + load.cost / fitting[i].speed,
                -fitting[i].speed,
                i,
            ),
        )
        hosted[fitting[best].name].append(load.index)
    for parts in hosted.values():
        parts.sort()
    result.unplaced.sort()
    return result


def _has_slot(hosted: list[int], parts_per_board: int | None) -> bool:
    return parts_per_board is None or len(hosted) < parts_per_board


def _shortfall(
    load: PartLoad,
    open_boards: list[BoardSlot],
    hosted: dict[str, list[int]],
    loads: dict[int, PartLoad],
    refused: Collection[tuple[str, int]],
) -> Shortfall:
    if not open_boards:
        return Shortfall(load.index, load.memory_mb, "no-board")
    willing = [b for b in open_boards if (b.name, load.index) not in refused]
    if not willing:
        return Shortfall(load.index, load.memory_mb, "refused")
    room = max(b.memory_mb - memory_used(hosted[b.name], loads) for b in willing)
    return Shortfall(load.index, load.memory_mb, "memory", max(room, 0.0))


# ---- one part per board: decompose and deploy ------------------------------------------------------------------


def params_fitting(memory_mb: float) -> int:
    """The most parameters a part may have to run in `memory_mb` (the inverse of PartCost.memory_mb)."""
    return max(0, int((memory_mb - RUNTIME_OVERHEAD_MB) * 2**20 / BYTES_PER_PARAM_AT_RUNTIME))


@dataclass(frozen=True)
class PartCost:
    index: int
    params: int
    flops: int

    @property
    def load(self) -> PartLoad:
        # Read at call time: tests scale BYTES_PER_PARAM_AT_RUNTIME to make kilobyte-sized parts "large".
        return PartLoad(self.index, float(self.flops), self.params * BYTES_PER_PARAM_AT_RUNTIME / 2**20)

    @property
    def memory_mb(self) -> float:
        """The board memory running this part alone takes (agent process included)."""
        return RUNTIME_OVERHEAD_MB + self.load.memory_mb


def agent_boards(boards: list[BoardConfig]) -> list[BoardConfig]:
    return [b for b in boards if "agent" in b.roles]


def place_parts(parts: list[PartCost], boards: list[BoardConfig]) -> dict[str, int]:
    """board name -> part index, one part per agent board. Boards with a fixed `part:` keep it as written."""
    candidates = agent_boards(boards)
    if len(candidates) < len(parts):
        raise PlacementError(
            f"{len(parts)} parts need {len(parts)} boards with role 'agent', the fleet has "
            f"{len(candidates)}; add boards or decompose into fewer parts (--parts)"
        )
    placement: dict[str, int] = {b.name: b.part for b in candidates if b.part is not None}
    loads = {p.index: p.load for p in parts if p.index not in placement.values()}
    free = [BoardSlot(b.name, b.gflops, b.memory_mb) for b in candidates if b.part is None]
    result = place(loads, free, parts_per_board=1)
    if result.shortfalls:
        short = result.shortfalls[0]
        biggest = short.room_mb + RUNTIME_OVERHEAD_MB if short.reason == "memory" else 0.0
        raise PlacementError(
            f"part {short.part} needs ~{RUNTIME_OVERHEAD_MB + short.needed_mb:.0f} MB but the "
            f"largest free board has {biggest:.0f} MB; prune harder (smaller --part-budget) or add "
            "a bigger board",
            part=short.part,
            available_mb=biggest,
        )
    where = {parts[0]: board for board, parts in result.assignments.items() if parts}
    # In placement order (heaviest part first), as bundle.json has always recorded it.
    placement.update({where[load.index]: load.index for load in sorted(loads.values(), key=greedy_order)})
    return placement


def size_shares(boards: list[BoardConfig], parts: int) -> list[float]:
    """Relative compute share per part so every board finishes together: share ∝ board speed.

    The k fastest agent boards run the k parts; shares are normalised to a mean of 1.
    """
    speeds = sorted((b.gflops for b in agent_boards(boards)), reverse=True)[:parts]
    if len(speeds) < parts:
        raise PlacementError(f"{parts} parts need {parts} agent boards, the fleet has {len(speeds)}")
    mean = sum(speeds) / parts
    return [s / mean for s in speeds]
