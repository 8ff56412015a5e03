"""ED-ViT's greedy placement of sub-models onto heterogeneous boards, and fleet-aware sizing.

Greedy rule (ED-ViT): take sub-models from the most to the least expensive; give each to
the fastest board that still has memory for it and has no part yet. When a part fits no
board, the caller prunes harder and retries (decompose does; deploy only reports).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def params_fitting(memory_mb: float) -> int:
    """The most parameters a part may have to run in `memory_mb` (the inverse of PartCost.memory_mb)."""
    return max(0, int((memory_mb - RUNTIME_OVERHEAD_MB) * 2**20 / BYTES_PER_PARAM_AT_RUNTIME))


@dataclass(frozen=True)
class PartCost:
    index: int
    params: int
    flops: int

    @property
    def memory_mb(self) -> float:
        return RUNTIME_OVERHEAD_MB + self.params * BYTES_PER_PARAM_AT_RUNTIME / 2**20


def agent_boards(boards: list[BoardConfig]) -> list[BoardConfig]:
    return [b for b in boards if "agent" in b.roles]


def place_parts(parts: list[PartCost], boards: list[BoardConfig]) -> dict[str, int]:
    """board name -> part index. Boards with a fixed `part:` keep it."""
    candidates = agent_boards(boards)
    if len(candidates) < len(parts):
        raise PlacementError(f"{len(parts)} parts need {len(parts)} boards with role 'agent', the fleet has "
                             f"{len(candidates)}; add boards or decompose into fewer parts (--parts)")
    placement: dict[str, int] = {b.name: b.part for b in candidates if b.part is not None}
    taken = set(placement.values())
    free = sorted((b for b in candidates if b.part is None), key=lambda b: -b.speed)
    for part in sorted((p for p in parts if p.index not in taken), key=lambda p: -p.flops):
        fitting = [b for b in free if b.memory_mb >= part.memory_mb]
        if not fitting:
            biggest = max((b.memory_mb for b in free), default=0)
            raise PlacementError(f"part {part.index} needs ~{part.memory_mb:.0f} MB but the largest free board has "
                                 f"{biggest} MB; prune harder (smaller --part-budget) or add a bigger board",
                                 part=part.index, available_mb=float(biggest))
        board = fitting[0]
        placement[board.name] = part.index
        free.remove(board)
    return placement


def size_shares(boards: list[BoardConfig], parts: int) -> list[float]:
    """Relative compute share per part so every board finishes together: share ∝ board speed.

    The k fastest agent boards run the k parts; shares are normalised to a mean of 1.
    """
    speeds = sorted((b.speed for b in agent_boards(boards)), reverse=True)[:parts]
    if len(speeds) < parts:
        raise PlacementError(f"{parts} parts need {parts} agent boards, the fleet has {len(speeds)}")
    mean = sum(speeds) / parts
    return [s / mean for s in speeds]
