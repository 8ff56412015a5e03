"""Re-planning for a slow board, without a broker: the coordinator's speed rules on a fake clock.

A board's measured speed is trusted only once a change has held for the hold time; a trusted slowdown that
makes another layout more than 10 % faster moves its parts (make before break); nothing else -- blips, noise,
the new host's own first measurement -- changes the plan again. The real processes are in
tests/test_replan_fleet.py.
"""

from __future__ import annotations

import random

from test_fleet_plan import _manifest

from vitfleet.agent.board_speeds import BoardSpeeds
from vitfleet.agent.coordinator import Coordinator
from vitfleet.fleet_config import AggregatorConfig, BoardConfig, FleetConfig
from vitfleet.placement import BoardSlot, PartLoad
from vitfleet.stats_message import AgentStats
from vitfleet.throttle_state import ThrottleState

HOLD = 2.0
STEP = 0.5


def _fleet() -> FleetConfig:
    boards = [BoardConfig(name="agent0", part=0), BoardConfig(name="agent1", part=1), BoardConfig(name="spare")]
    return FleetConfig(
        boards=boards + [BoardConfig(name="aggregator", roles=["aggregator"])],
        aggregator=AggregatorConfig(heal_after_s=2.0, replan_hold_s=HOLD),
    )


class Run:
    """The coordinator fed with every agent's stats every STEP seconds; agents follow each plan at once."""

    def __init__(self) -> None:
        self.c = Coordinator(
            _fleet(), _manifest(2), heal_after_s=2.0, engines_url="http://x/engines/", started=0.0, replan_hold_s=HOLD
        )
        self.now = 0.0
        self.fps = {"agent0": 100.0, "agent1": 100.0, "spare": 100.0}  # what each board computes when busy
        self.running = {"agent0": [0], "agent1": [1], "spare": []}
        self.plans = []
        self.throttle: dict[str, ThrottleState] = {}
        for b in self.running:
            self.c.observe_availability(b, "online", 0.0)

    def run_until(self, t: float, noise: float = 0.0, rng: random.Random | None = None) -> None:
        while self.now < t:
            self.now = round(self.now + STEP, 6)
            for board, parts in self.running.items():
                jitter = 1.0 + (rng.uniform(-noise, noise) if rng else 0.0)
                stats = AgentStats(
                    board=board,
                    ts=self.now,
                    fps=0.0,
                    plan_id=self.c.plan.plan_id if self.c.plan else None,
                    parts=parts,
                    recent_own_fps=self.fps[board] * jitter if parts else None,
                    recent_frames=50 if parts else 0,
                    throttle=self.throttle.get(board),
                )
                self.c.observe_ack(stats)
                self.c.observe_speed(stats, self.now)
            plan = self.c.tick(self.now)
            if plan is not None:
                self.plans.append((self.now, plan))
                for board in self.running:
                    if board in plan.assignments:
                        self.running[board] = plan.assignments[board]


def test_a_board_slowed_3x_has_its_part_moved_to_the_spare_after_the_hold_and_the_plan_then_stands():
    r = Run()
    r.run_until(10.0)
    assert [p.reason.split(":")[0] for _, p in r.plans] == ["initial"]  # measured equal: nothing moves
    r.fps["agent1"] = 33.0
    r.throttle["agent1"] = ThrottleState(source="vcgencmd", throttled=True, reasons=["throttled now"])
    r.run_until(10.0 + HOLD - STEP)
    assert len(r.plans) == 1  # not yet: the change must hold
    r.run_until(10.0 + HOLD + 2 * STEP)
    overlap, final = r.plans[1][1], r.plans[2][1]
    assert overlap.assignments == {"agent0": [0], "agent1": [1], "spare": [1]}  # make before break
    assert "agent1 runs at 0.33x its best (vcgencmd: throttled now)" in overlap.reason
    assert final.assignments == {"agent0": [0], "agent1": [], "spare": [1]}
    assert r.plans[2][0] - 10.0 <= HOLD + 2 * STEP
    # nothing else changes: the spare's own first measurement, an idle slow board, a minute of the same speeds
    r.run_until(70.0)
    assert len(r.plans) == 3, [p.reason for _, p in r.plans]
    assert r.c.speed_replans == 1


def test_a_blip_shorter_than_the_hold_and_noise_within_the_tolerance_never_move_a_part():
    r = Run()
    r.run_until(10.0)
    r.fps["agent1"] = 30.0
    r.run_until(10.0 + HOLD - 2 * STEP)  # slow for less than the hold
    r.fps["agent1"] = 100.0
    r.run_until(40.0, noise=0.18, rng=random.Random(7))  # +-18 % per report for 30 s
    assert len(r.plans) == 1, [p.reason for _, p in r.plans]


def test_a_slow_board_without_a_spare_shares_its_part_when_that_is_more_than_10_percent_faster():
    c = Coordinator(
        FleetConfig(
            boards=[
                BoardConfig(name="agent0", part=0),
                BoardConfig(name="agent1", part=1),
                BoardConfig(name="aggregator", roles=["aggregator"]),
            ],
            aggregator=AggregatorConfig(heal_after_s=2.0, replan_hold_s=HOLD),
        ),
        _manifest(2),
        heal_after_s=2.0,
        started=0.0,
        replan_hold_s=HOLD,
    )
    r = Run.__new__(Run)
    r.c, r.now, r.plans, r.throttle = c, 0.0, [], {}
    r.fps, r.running = {"agent0": 100.0, "agent1": 100.0}, {"agent0": [0], "agent1": [1]}
    for b in r.running:
        c.observe_availability(b, "online", 0.0)
    r.run_until(10.0)
    r.fps["agent1"] = 40.0  # both parts on agent0: 2 / 100 beats 1 / 40 by 20 %
    r.run_until(20.0)
    assert r.plans[-1][1].assignments == {"agent0": [0, 1], "agent1": []}
    r.fps["agent0"] = 100.0
    r.run_until(60.0)
    assert len(r.plans) == 3


def test_trusted_speeds_need_the_hold_and_unmeasured_boards_are_scaled_by_the_measured_ones():
    loads = {0: PartLoad(0, 10.0, 1.0), 1: PartLoad(1, 10.0, 1.0)}
    s = BoardSpeeds(hold_s=2.0)
    for t in (0.0, 1.0):
        assert not s.observe("a", t, 50.0, [0], loads)
    assert s.observe("a", 2.0, 50.0, [0], loads) and s.trusted == {"a": 500.0}
    configured = {"a": BoardSlot("a", 4.0, 1024), "b": BoardSlot("b", 8.0, 1024)}
    assert s.slots(configured)["b"].speed == 1000.0  # twice a's fleet.yaml speed: twice its measured one
    assert not s.observe("a", 3.0, None, [0], loads) and not s.observe("a", 3.0, 50.0, [], loads)
    for t in (4.0, 5.0, 6.0):
        s.observe("a", t, 10.0, [0], loads)
    assert s.trusted["a"] == 100.0 and s.best["a"] == 500.0 and s.share_of_best("a") == 0.2
