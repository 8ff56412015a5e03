"""The coordinator's decisions: which plan the fleet should follow, given who is online and what agents report.

Pure state and rules, no I/O (agent/coordinator_service.py puts it on the bus). Called with the time, so
tests drive it with a fake clock.

- **Initial plan**: fleet.yaml's placement (each agent board's `part`, else its rank; boards beyond the parts
  are spares with none). A retained plan found at start (a restarted aggregator) is adopted instead.
- **Healing**: a board whose retained availability has said `offline` for `heal_after_s` (or that never came
  online within `join_grace_s` of the start) is down. Its parts are orphans; they go to the live boards by
  the fleet's one placement rule, vitfleet.placement.place (ED-ViT's greedy order, several parts per board;
  survivors keep their parts; memory and speed respected). A board that is offline for less than
  `heal_after_s` keeps its parts (a broker blip must not reshuffle the fleet).
- **Refusals**: a part an agent reports it could not load (sha256 mismatch, no engine) is never offered to
  that board again until it restarts; it goes to another board or stays unplaced (degraded, said in the stats
  and the log).
- **Move back / joins**: when every part is placed, the coordinator compares the plan with the fleet.yaml
  placement over the live boards (spares and unplaced parts filled in greedily). If that shortens the
  critical path (busiest board's work / speed) by more than 10 %, it moves there — make before break: first a
  plan in which the new host runs the part too (the old one keeps it), then, once the new host acknowledges it
  runs the part, the plan without the old copy. A returned board takes its part back (one part per board is
  the fastest layout, the survivor's double load is the fleet's critical path); a plan that is no faster is
  kept (moving costs a load for nothing).
- **Slow boards** (with `replan_hold_s`): every agent reports its measured rate; agent/board_speeds.py turns it
  into a trusted speed per board, changed only by a change that persisted for the hold time. Placement then uses
  the trusted speeds, and after each trusted change the coordinator asks whether moving or sharing parts would
  shorten the critical path by more than 10 % (the same rule and the same make-before-break move as above); the
  candidates keep every part where it is except those of one board (the fewest moves), or place afresh. Only a
  new trusted change re-opens the question, so a plan is never undone or redone while the speeds stand still.
  A board left with no part keeps its last trusted speed (it computes nothing to measure).
- **Adoption** (with `adopt_boards`): a board fleet.yaml does not name that says hello (vitfleet/hello_message.py)
  becomes an agent board with the memory and speed it announced, a spare that the move rule above gives parts
  when that shortens the critical path by more than 10 %.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from vitfleet.agent.board_speeds import BoardSpeeds
from vitfleet.board_kinds import board_kind
from vitfleet.engines.runtime.manifest import Manifest
from vitfleet.fleet_config import BoardConfig, FleetConfig
from vitfleet.fleet_plan_message import FleetPlanMessage, PlanAck
from vitfleet.hello_message import BoardHello
from vitfleet.placement import BoardSlot, PartLoad, Placement, Shortfall, board_time, makespan, memory_used, place
from vitfleet.stats_message import AgentStats
from vitfleet.throttle_state import ThrottleState
from vitfleet.topics import Availability

log = logging.getLogger("vitfleet.coordinator")

Assignments = dict[str, list[int]]
REBALANCE_GAIN = 0.10  # move parts only for a critical path at least this much shorter
MOVE_TIMEOUT_S = 30.0  # a move whose new host never acknowledges is abandoned (both keep the part)

# An ONNX Runtime session of an int8 QDQ part holds its initialisers plus dequantised/constant-folded copies and
# its arena, a few times the file size for ViT-B/16 parts; these two constants are the estimate until an agent
# reports the session's measured resident growth (PlanAck.part_mem_mb), and the larger of the two is used.
SESSION_BYTES_FACTOR = 4.0
SESSION_FIXED_MB = 8.0


def estimate_part_mb(engine_bytes: int) -> float:
    return SESSION_FIXED_MB + SESSION_BYTES_FACTOR * engine_bytes / 2**20


def part_loads(manifest: Manifest, backend: str = "onnxruntime") -> dict[int, PartLoad]:
    """Relative cost and memory per part from the engine files the agents load (cost: file bytes)."""
    loads = {}
    for p in range(manifest.num_parts):
        try:
            size = manifest.lookup("part", p, backend).size
        except Exception:  # noqa: BLE001 - EngineError: no such engine; every part then costs the same
            size = 1
        loads[p] = PartLoad(p, float(max(size, 1)), estimate_part_mb(size))
    return loads


def home_placement(fleet: FleetConfig, num_parts: int) -> dict[str, int | None]:
    """fleet.yaml's placement: the part each agent board starts with (None for a spare)."""
    from vitfleet.agent.fleet_resolve import FleetOptionError, part_for

    home: dict[str, int | None] = {}
    for board in fleet.boards_with("agent"):
        try:
            home[board.name] = part_for(fleet, board, num_parts, allow_spare=True)
        except FleetOptionError:
            home[board.name] = None
    return home


@dataclass
class _Move:
    target: Assignments
    reason: str
    started: float
    gains: Assignments  # board -> the parts it takes over: these must be running before the old copies go


@dataclass(frozen=True)
class _Tick:
    """The fleet as one tick sees it, once healed: what a rebalance or a re-plan for speed weighs."""

    current: Assignments  # the healed layout
    loads: dict[int, PartLoad]  # parts free to move (not held by a board that is briefly offline)
    slots: list[BoardSlot]  # the live boards
    by_name: dict[str, BoardSlot]
    refused: set[tuple[str, int]]
    live: list[str]
    holding: Assignments  # offline for less than heal_after_s: its parts stay where they are
    now: float


@dataclass
class Coordinator:
    fleet: FleetConfig
    manifest: Manifest
    heal_after_s: float
    engines_url: str | None = None
    settle_s: float = 0.5  # wait this long at start for a retained plan to adopt
    join_grace_s: float = 30.0  # a board never seen online is down after this long
    backend: str = "onnxruntime"
    replan_hold_s: float | None = None  # None: parts move only for lost or returning boards, never for speed
    adopt_boards: bool = False  # agent boards fleet.yaml does not name get parts once they say hello
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.k = self.manifest.num_parts
        self.loads = part_loads(self.manifest, self.backend)
        self.home = home_placement(self.fleet, self.k)
        self.slots = {b.name: BoardSlot(b.name, b.gflops, b.memory_mb) for b in self.fleet.boards_with("agent")}
        self.listed = set(self.slots)  # the agent boards fleet.yaml names
        self.status: dict[str, str] = {}
        self.since: dict[str, float] = {}
        self.acks: dict[str, PlanAck] = {}
        self.refused: dict[tuple[str, int], str] = {}
        self.plan: FleetPlanMessage | None = None
        self.move: _Move | None = None
        self.changes = 0
        self.notes: list[str] = []  # why parts are unplaced, for stats
        self.speeds = BoardSpeeds(self.replan_hold_s) if self.replan_hold_s is not None else None
        self.throttle: dict[str, ThrottleState] = {}
        self._events = 0  # boards that came, went or joined: each may open a better layout
        self._weighed = (-1, -1)  # (events, speeds version) when layouts were last weighed
        self.speed_replans = 0

    # ---- observations -------------------------------------------------------------------------------------
    def observe_availability(self, board: str, status: Availability, now: float) -> None:
        if self.status.get(board) != status:
            self._events += 1
            self.status[board] = status
            self.since[board] = now
            if status == Availability.ONLINE:  # a restarted board may have been fixed: offer it everything again
                self.refused = {k: v for k, v in self.refused.items() if k[0] != board}

    def observe_ack(self, ack: PlanAck) -> None:
        if ack.role != "agent":
            return
        if ack.board not in self.slots:  # an agent fleet.yaml does not list: default memory and speed
            default = BoardConfig(name=ack.board)
            self.slots[ack.board] = BoardSlot(ack.board, default.gflops, default.memory_mb)
            self.home.setdefault(ack.board, ack.parts[0] if ack.parts else None)
            self._events += 1
        self.acks[ack.board] = ack
        for key, mb in ack.part_mem_mb.items():
            p = int(key)
            if p in self.loads and mb > self.loads[p].memory_mb:
                self.loads[p] = PartLoad(p, self.loads[p].cost, mb)
        if self.plan is not None and ack.plan_id == self.plan.plan_id:
            for key, why in ack.failed_parts.items():
                if (ack.board, int(key)) not in self.refused:
                    self.refused[(ack.board, int(key))] = why
                    log.error("%s refused part %s: %s", ack.board, key, why)

    def observe_hello(self, hello: BoardHello) -> None:
        """A board's hello: with `adopt_boards`, a board fleet.yaml does not name joins the agent boards with the
        memory and speed it announced (a spare, until placement gives it parts)."""
        if not self.adopt_boards or hello.board in self.listed:
            return
        kind_speed = board_kind(hello.kind).typical_gflops
        slot = BoardSlot(hello.board, hello.speed or kind_speed, float(hello.memory_mb))
        if self.slots.get(hello.board) != slot:
            if hello.board not in self.slots:
                log.info(
                    "adopting %s (%s, %d cores, %d MB, %s GFLOP/s)",
                    hello.board,
                    hello.kind,
                    hello.cores,
                    hello.memory_mb,
                    hello.speed,
                )
            self.slots[hello.board] = slot
            self.home.setdefault(hello.board, None)
            self._events += 1

    def observe_speed(self, stats: AgentStats, now: float) -> None:
        """An agent's measured rate and throttling state (its stats), for speed-aware placement."""
        if stats.throttle is not None:
            self.throttle[stats.board] = stats.throttle
        if self.speeds is not None and stats.board in self.slots:
            self.speeds.observe(stats.board, now, stats.recent_own_fps, stats.parts, self.loads, stats.recent_busy)

    def _slots_now(self) -> dict[str, BoardSlot]:
        """Every agent board with the speed placement should assume now: trusted measurements when re-planning
        for speed, else fleet.yaml's."""
        return self.slots if self.speeds is None else self.speeds.slots(self.slots)

    def adopt(self, plan: FleetPlanMessage) -> None:
        """A retained plan from before this coordinator started (the aggregator restarted): carry on from it."""
        # Only a plan of this fleet (same parts, only its agent boards): a stale plan of another layout left on
        # a long-lived broker would otherwise hold parts for boards that never come.
        if self.plan is None and plan.num_parts == self.k and set(plan.assignments) <= set(self.slots):
            self.plan = plan
            log.info("adopted the retained plan %d (%s)", plan.plan_id, plan.reason)

    # ---- decisions ----------------------------------------------------------------------------------------
    def _down(self, board: str, now: float) -> bool:
        status = self.status.get(board)
        if status is None:
            return now - self.started >= self.join_grace_s
        return status == Availability.OFFLINE and now - self.since[board] >= self.heal_after_s

    def tick(self, now: float) -> FleetPlanMessage | None:
        """The plan to publish now, or None when the current one stands."""
        if self.plan is None:
            if now - self.started < self.settle_s:
                return None
            home = {b: ([p] if p is not None else []) for b, p in self.home.items()}
            return self._publish(home, [], "initial: the fleet.yaml placement")
        if self.move is not None and not self._move_pending(now):
            target, reason = self.move.target, self.move.reason
            self.move = None
            return self._publish(target, self.plan.unplaced, reason)
        if self.move is not None:
            return None
        current = self.plan.assignments
        live = sorted(b for b in self.slots if self.status.get(b) == Availability.ONLINE)
        down = {b for b in current if self._down(b, now)}
        # Offline for less than heal_after_s, or not started yet: keep its parts, move nothing of it.
        holding = {b: parts for b, parts in current.items() if b not in live and b not in down}
        held = {p for parts in holding.values() for p in parts}
        loads = {p: load for p, load in self.loads.items() if p not in held}
        by_name = self._slots_now()
        slots = [by_name[b] for b in live]
        refused = set(self.refused)
        healed = place(loads, slots, {b: current[b] for b in live if b in current}, refused)
        new = {**holding, **healed.assignments}
        self.notes = [unplaced_note(s) for s in healed.shortfalls]
        if _norm(new) != _norm(current) or healed.unplaced != self.plan.unplaced:
            return self._publish(new, healed.unplaced, self._heal_reason(current, new, down, self.notes))
        if self.speeds is not None:
            # Re-planning for speed weighs layouts only after something happened (a board came or went, a trusted
            # speed changed): with speeds that stand still the plan stands still.
            mark = (self._events, self.speeds.version)
            if mark == self._weighed:
                return None
            self._weighed = mark
        tick = _Tick(new, loads, slots, by_name, refused, live, holding, now)
        moved = self._rebalance(tick)
        if moved is not None or self.move is not None:
            return moved
        return self._replan_for_speed(tick)

    def _rebalance(self, tick: _Tick) -> FleetPlanMessage | None:
        home_keep = {b: [p] for b in tick.live if (p := self.home.get(b)) is not None}
        best = place(tick.loads, tick.slots, home_keep, tick.refused)
        target = {**tick.holding, **best.assignments}
        if _norm(target) == _norm(tick.current) or len(best.unplaced) > len(self.plan.unplaced if self.plan else []):
            return None
        before, after = makespan(tick.current, tick.by_name, self.loads), makespan(target, tick.by_name, self.loads)
        if len(best.unplaced) == len(self.plan.unplaced if self.plan else []) and after > before * (
            1.0 - REBALANCE_GAIN
        ):
            return None
        gained = {b: [p for p in parts if p not in tick.current.get(b, [])] for b, parts in target.items()}
        moves = [
            f"{b} is back: part {p} returns to it" if self.home.get(b) == p else f"part {p} -> {b}"
            for b, parts in sorted(gained.items())
            for p in parts
        ]
        reason = f"faster layout: {', '.join(moves)} (critical path {before / max(after, 1e-9):.2f}x shorter)"
        return self._start_move(tick.current, target, best.unplaced, reason, tick.live, tick.now)

    def _replan_for_speed(self, tick: _Tick) -> FleetPlanMessage | None:
        """After a trusted speed change: the layout with the shortest critical path under the speeds as measured,
        if it beats the current one by more than REBALANCE_GAIN."""
        if self.speeds is None:
            return None
        assert self.plan is not None
        before = makespan(tick.current, tick.by_name, self.loads)
        busiest = sorted(
            (b for b in tick.current if tick.current[b]),
            key=lambda b: -board_time(tick.current[b], tick.by_name[b], self.loads) if b in tick.by_name else 0.0,
        )
        candidates = [
            place(tick.loads, tick.slots, {b: ps for b, ps in tick.current.items() if b != drop}, tick.refused)
            for drop in busiest
        ] + [place(tick.loads, tick.slots, {}, tick.refused)]

        def moved(c: Placement) -> int:
            return sum(p not in tick.current.get(b, []) for b, ps in c.assignments.items() for p in ps)

        # The fewest moves among the layouts within REBALANCE_GAIN of the fastest: a further move for a gain the
        # measurements cannot tell from noise is not worth its load.
        fewest = min(len(c.unplaced) for c in candidates)
        spans = {id(c): makespan({**tick.holding, **c.assignments}, tick.by_name, self.loads) for c in candidates}
        fastest = min(spans[id(c)] for c in candidates if len(c.unplaced) == fewest)
        best = min(
            (c for c in candidates if len(c.unplaced) == fewest and spans[id(c)] <= fastest / (1.0 - REBALANCE_GAIN)),
            key=lambda c: (moved(c), spans[id(c)]),
        )
        target = {**tick.holding, **best.assignments}
        after = makespan(target, tick.by_name, self.loads)
        if (
            len(best.unplaced) > len(self.plan.unplaced)
            or _norm(target) == _norm(tick.current)
            or after > before * (1.0 - REBALANCE_GAIN)
        ):
            return None
        gained = {b: [p for p in parts if p not in tick.current.get(b, [])] for b, parts in target.items()}
        moves = ", ".join(f"part {p} -> {b}" for b, parts in sorted(gained.items()) for p in parts)
        reason = (
            f"speed: {self._speed_note(tick.current)}: {moves} (critical path {before / max(after, 1e-9):.2f}x "
            "shorter at the measured speeds)"
        )
        self.speed_replans += 1
        return self._start_move(tick.current, target, best.unplaced, reason, tick.live, tick.now)

    def _speed_note(self, current: Assignments) -> str:
        """Which boards run slower than their best, and what their throttling state says."""
        assert self.speeds is not None
        notes = []
        for board in sorted(current):
            share = self.speeds.share_of_best(board)
            if share is None or share >= 1 / (1 + self.speeds.tolerance):
                continue
            state = self.throttle.get(board)
            why = f" ({state.source}: {'; '.join(state.reasons)})" if state is not None and state.reasons else ""
            notes.append(f"{board} runs at {share:.2f}x its best{why}")
        return "; ".join(notes) or "measured speeds differ from the plan's"

    def _start_move(
        self, current: Assignments, target: Assignments, unplaced: list[int], reason: str, live: list[str], now: float
    ) -> FleetPlanMessage | None:
        """Make before break: a plan in which the new hosts run their parts too, then (once they acknowledge
        running them) `target`; at once when a board has no memory to overlap."""
        gained = {b: [p for p in parts if p not in current.get(b, [])] for b, parts in target.items()}
        both = {b: sorted(set(current.get(b, [])) | set(target.get(b, []))) for b in set(current) | set(target)}
        fits = all(
            memory_used(parts, self.loads) <= self.slots[b].memory_mb for b, parts in both.items() if b in self.slots
        )
        if not fits:  # no room to overlap: switch at once (the part is missing while the new host loads it)
            return self._publish(target, unplaced, reason)
        self.move = _Move(target, reason, now, {b: parts for b, parts in gained.items() if parts})
        # A board the plan does not name runs what it started with (a returned board: its own part).
        assert self.plan is not None
        running = {
            **current,
            **{b: self.acks[b].parts for b in live if b not in self.plan.assignments and b in self.acks},
        }
        if all(set(parts) <= set(running.get(b, [])) for b, parts in both.items()):
            return None  # the new hosts already run their parts: wait for their acknowledgement
        return self._publish(
            both,
            self.plan.unplaced if self.plan else [],
            f"{reason}; the new host(s) load first, the old copy goes once they run it",
        )

    def _move_pending(self, now: float) -> bool:
        """True while a make-before-break move waits for its new hosts; False when it may complete."""
        assert self.move is not None and self.plan is not None
        if now - self.move.started > MOVE_TIMEOUT_S:
            log.warning("abandoned a move: its new host did not run the part within %.0f s", MOVE_TIMEOUT_S)
            self.move = None
            return True
        for board, parts in self.move.gains.items():
            if self.status.get(board) != Availability.ONLINE:
                self.move = None  # the new host went away: re-plan from scratch
                return True
            ack = self.acks.get(board)
            if ack is None or ack.plan_id is None or ack.plan_id < self.plan.plan_id:
                return True
            if any((board, p) in self.refused for p in parts):
                self.move = None
                return True
            if not set(parts) <= set(ack.parts):
                return True
        return False

    def _heal_reason(self, old: Assignments, new: Assignments, down: set[str], notes: list[str]) -> str:
        moves = [f"part {p} -> {b}" for b, parts in sorted(new.items()) for p in parts if p not in old.get(b, [])]
        lost = [
            f"{b} offline for {self.heal_after_s:g} s" if self.status.get(b) else f"{b} never came online"
            for b in sorted(down)
            if old.get(b)
        ]
        refusals = [f"{b} refused part {p}" for (b, p) in sorted(self.refused) if p in old.get(b, [])]
        head = "; ".join(lost + refusals) or "parts without a host"
        tail = ", ".join(moves) or "nothing could move"
        return f"heal: {head}: {tail}" + (f"; cannot fit: {' '.join(notes)}" if notes else "")

    def _publish(self, assignments: Assignments, unplaced: list[int], reason: str) -> FleetPlanMessage:
        now_us = time.time_ns() // 1000
        plan_id = max(now_us, (self.plan.plan_id + 1) if self.plan else 0)
        self.plan = FleetPlanMessage(
            plan_id=plan_id,
            created_ns=time.time_ns(),
            reason=reason,
            assignments={b: sorted(p) for b, p in sorted(assignments.items())},
            unplaced=sorted(unplaced),
            num_parts=self.k,
            engines_url=self.engines_url,
        )
        self.changes += 1
        return self.plan

    def stats(self) -> dict[str, object]:
        plan = self.plan
        return {
            "plan_id": plan.plan_id if plan else None,
            "plan_changes": self.changes,
            "plan": plan.assignments if plan else None,
            "unplaced_parts": plan.unplaced if plan else [],
            "plan_reason": plan.reason if plan else None,
            "moving": self.move is not None,
            "unplaced_why": list(self.notes),
            "heal_after_s": self.heal_after_s,
            "speed_replans": self.speed_replans,
            "board_speeds": {} if self.speeds is None else {b: round(v, 1) for b, v in self.speeds.trusted.items()},
        }


def unplaced_note(short: Shortfall) -> str:
    """The coordinator's sentence for a part no live board can take (stats, the plan's reason, the log)."""
    if short.reason == "no-board":
        return f"part {short.part}: no live agent board to run it"
    if short.reason == "refused":
        return f"part {short.part}: every live board refused its engine (see their logs)"
    return (
        f"part {short.part} needs ~{short.needed_mb:.0f} MB but the live board with the most room has "
        f"{short.room_mb:.0f} MB free; answers stay degraded until a board with room is back "
        "(raise boards[].memory_mb only if the board really has it)"
    )


def _norm(a: Assignments) -> dict[str, list[int]]:
    """Assignments compared without boards that run nothing."""
    return {b: sorted(p) for b, p in a.items() if p}
