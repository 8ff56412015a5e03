"""Which live board runs which parts: ED-ViT's greedy rule, extended to boards that host several parts.

decompose/placement.py places one part per board at deploy time. A fleet that lost a board has fewer boards
than parts, so here a board may host several parts (one engine session each), within its memory:

- parts the plan keeps stay where they are (moving a part costs a load and a fetch; only orphans move);
- orphaned parts, most expensive first (ED-ViT's order), each go to the board that would finish its frame
  earliest with it — (work already hosted + this part) / speed — among the boards with memory left for it
  and that have not refused it; ties go to the faster board (ED-ViT: the fastest free board), then by name;
- a part no board can hold stays unplaced, and the reason says how much memory it needed.

Board memory holds the agent process (RUNTIME_OVERHEAD_MB, the same allowance decompose/placement.py makes for
one ONNX Runtime part) plus every hosted part's session. Pure functions, no I/O: the coordinator calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitfleet.placement import RUNTIME_OVERHEAD_MB

# An ONNX Runtime session of an int8 QDQ part holds its initialisers plus dequantised/constant-folded copies and
# its arena: measured 4.0-4.5x the file size for ViT-B/16 parts; 4x + 8 MB is the estimate until an agent
# reports the session's measured resident growth (PlanAck.part_mem_mb), and the larger of the two is used.
SESSION_BYTES_FACTOR = 4.0
SESSION_FIXED_MB = 8.0


def estimate_part_mb(engine_bytes: int) -> float:
    return SESSION_FIXED_MB + SESSION_BYTES_FACTOR * engine_bytes / 2**20


@dataclass(frozen=True)
class PartLoad:
    index: int
    cost: float          # relative compute per frame (engine file bytes: params, hence FLOPs, of one architecture)
    memory_mb: float


@dataclass(frozen=True)
class BoardSlot:
    name: str
    speed: float         # relative throughput (fleet.yaml `speed`, measured by `vitfleet deploy profile`)
    memory_mb: float


@dataclass
class Placement:
    assignments: dict[str, list[int]]
    unplaced: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # one sentence per unplaced part: why


def board_time(parts: list[int], board: BoardSlot, loads: dict[int, PartLoad]) -> float:
    return sum(loads[p].cost for p in parts) / board.speed


def makespan(assignments: dict[str, list[int]], boards: dict[str, BoardSlot], loads: dict[int, PartLoad]) -> float:
    """The fleet's critical path per frame: the busiest board's hosted work over its speed."""
    times = [board_time(parts, boards[b], loads) for b, parts in assignments.items() if b in boards and parts]
    return max(times, default=0.0)


def memory_used(parts: list[int], loads: dict[int, PartLoad]) -> float:
    return RUNTIME_OVERHEAD_MB + sum(loads[p].memory_mb for p in parts)


def place(loads: dict[int, PartLoad], boards: list[BoardSlot], keep: dict[str, list[int]],
          refused: set[tuple[str, int]] = frozenset()) -> Placement:  # type: ignore[assignment]
    """Every part onto `boards` (the live ones), keeping `keep` where it still fits."""
    by_name = {b.name: b for b in boards}
    hosted: dict[str, list[int]] = {b.name: [] for b in boards}
    placed: set[int] = set()
    for name, parts in keep.items():
        if name not in by_name:
            continue
        for p in sorted(parts):
            if p in loads and p not in placed and (name, p) not in refused and \
                    memory_used(hosted[name] + [p], loads) <= by_name[name].memory_mb:
                hosted[name].append(p)
                placed.add(p)
    result = Placement(assignments=hosted)
    for load in sorted((loads[p] for p in loads if p not in placed), key=lambda x: (-x.cost, x.index)):
        fitting = [b for b in boards if (b.name, load.index) not in refused
                   and memory_used(hosted[b.name] + [load.index], loads) <= b.memory_mb]
        if not fitting:
            result.unplaced.append(load.index)
            result.notes.append(_why_unplaced(load, boards, hosted, loads, refused))
            continue
        best = min(fitting, key=lambda b: ((board_time(hosted[b.name], b, loads) + load.cost / b.speed),
                                           -b.speed, b.name))
        hosted[best.name].append(load.index)
    for parts in hosted.values():
        parts.sort()
    result.unplaced.sort()
    return result


def _why_unplaced(load: PartLoad, boards: list[BoardSlot], hosted: dict[str, list[int]],
                  loads: dict[int, PartLoad], refused: set[tuple[str, int]]) -> str:
    if not boards:
        return f"part {load.index}: no live agent board to run it"
    open_boards = [b for b in boards if (b.name, load.index) not in refused]
    if not open_boards:
        return f"part {load.index}: every live board refused its engine (see their logs)"
    room = max(b.memory_mb - memory_used(hosted[b.name], loads) for b in open_boards)
    return (f"part {load.index} needs ~{load.memory_mb:.0f} MB but the live board with the most room has "
            f"{max(room, 0.0):.0f} MB free; answers stay degraded until a board with room is back "
            "(raise boards[].memory_mb only if the board really has it)")
