"""The fleet plan's rules without a broker: placement of several parts per board, healing, refusals, the move
back (make before break), spares, a plan that cannot fit, and the plan message's schema. A fake clock drives
the coordinator; the real processes are in tests/test_self_healing.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vitfleet.agent.coordinator import Coordinator, unplaced_note
from vitfleet.engines.runtime.manifest import EngineEntry, Manifest, TensorSpec
from vitfleet.fleet_config import AggregatorConfig, BoardConfig, FleetConfig, parse_fleet
from vitfleet.fleet_plan_message import FleetPlanMessage, PlanAck
from vitfleet.placement import BoardSlot, PartLoad, Shortfall, makespan, place
from vitfleet.preprocessing import Preprocessing
from vitfleet.topics import Topics

MB = 2**20


def _manifest(k: int, size: int = 8 * MB) -> Manifest:
    entries = [
        EngineEntry(
            role="part",
            part=p,
            precision="int8",
            backend="onnxruntime",
            file=f"part{p}.int8.onnx",
            size=size,
            sha256="0" * 64,
            inputs=[TensorSpec(name="image", shape=[1, 1, 28, 28], dtype="float32")],
            outputs=[TensorSpec(name="f", shape=[1, 32], dtype="float32")],
        )
        for p in range(k)
    ]
    return Manifest(
        bundle_id="b",
        method="edvit",
        class_names=[str(i) for i in range(10)],
        preprocessing=Preprocessing(size=28, channels=1, mean=[0.5], std=[0.5]),
        num_parts=k,
        feature_dims=[32] * k,
        entries=entries,
    )


def _fleet(k: int, memory_mb: int = 1024, spares: int = 0) -> FleetConfig:
    boards = [BoardConfig(name=f"agent{i}", part=i, memory_mb=memory_mb) for i in range(k)]
    boards += [BoardConfig(name=f"spare{i}", memory_mb=memory_mb) for i in range(spares)]
    return FleetConfig(
        boards=boards + [BoardConfig(name="aggregator", roles=["aggregator"])],
        aggregator=AggregatorConfig(heal_after_s=2.0),
    )


def _coordinator(k: int = 4, **fleet_kw: int) -> Coordinator:
    c = Coordinator(_fleet(k, **fleet_kw), _manifest(k), heal_after_s=2.0, engines_url="http://x/engines/", started=0.0)
    for b in c.slots:
        c.observe_availability(b, "online", 0.0)
    assert c.tick(0.1) is None  # settling: waits for a retained plan to adopt
    plan = c.tick(1.0)
    assert plan is not None and plan.reason.startswith("initial")
    return c


def _ack(c: Coordinator, board: str, parts: list[int], failed: dict[str, str] | None = None) -> None:
    assert c.plan is not None
    c.observe_ack(PlanAck(board=board, role="agent", plan_id=c.plan.plan_id, parts=parts, failed_parts=failed or {}))


def test_greedy_places_orphans_on_the_least_loaded_fitting_board():
    loads = {p: PartLoad(p, cost, 20.0) for p, cost in enumerate([4.0, 3.0, 2.0, 1.0])}
    boards = [BoardSlot("a", 1.0, 1024), BoardSlot("b", 2.0, 1024)]
    # the faster board takes the most expensive part; the rest go where they finish earliest
    result = place(loads, boards, keep={})
    assert result.assignments == {"a": [1], "b": [0, 2, 3]} and not result.unplaced
    assert makespan(result.assignments, {b.name: b for b in boards}, loads) == pytest.approx(3.5)
    # kept parts stay, only the orphan moves; a refused pair is never used
    result = place(loads, boards, keep={"a": [0], "b": [1, 2]}, refused={("b", 3)})
    assert result.assignments == {"a": [0, 3], "b": [1, 2]}


def test_a_part_that_fits_no_board_stays_unplaced_with_a_reason():
    loads = {0: PartLoad(0, 1.0, 500.0), 1: PartLoad(1, 1.0, 500.0)}
    result = place(loads, [BoardSlot("a", 1.0, 700)], keep={"a": [0]})
    assert result.assignments == {"a": [0]} and result.unplaced == [1]
    assert result.shortfalls == [Shortfall(1, 500.0, "memory", 80.0)]
    note = unplaced_note(result.shortfalls[0])
    assert "part 1 needs ~500 MB" in note and "80 MB free" in note


def test_heal_after_heal_after_s_then_move_back_make_before_break():
    c = _coordinator()
    assert c.plan.assignments == {f"agent{i}": [i] for i in range(4)}
    c.observe_availability("agent2", "offline", 10.0)
    assert c.tick(11.0) is None  # offline for less than heal_after_s: nothing moves
    healed = c.tick(12.0)
    assert healed is not None and "agent2 offline for 2 s" in healed.reason
    assert "agent2" not in healed.assignments  # not named: when it returns it keeps what it started with
    hosts = [b for b, parts in healed.assignments.items() if 2 in parts]
    assert len(hosts) == 1 and len(healed.assignments[hosts[0]]) == 2 and not healed.unplaced
    survivor = hosts[0]
    assert c.tick(13.0) is None  # stable
    # agent2 restarts with its own part 2, sees the plan (not named), acknowledges
    c.observe_availability("agent2", "online", 20.0)
    _ack(c, "agent2", [2])
    _ack(c, survivor, sorted(healed.assignments[survivor]))
    # it already runs part 2: no overlap plan needed, the move completes at once
    back = c.tick(20.1) or c.tick(20.2)
    assert back is not None and back.assignments == {f"agent{i}": [i] for i in range(4)}, back
    assert "agent2 is back: part 2 returns to it" in back.reason
    assert c.tick(21.0) is None and c.tick(30.0) is None  # settled


def test_move_back_to_a_board_that_must_load_the_part_overlaps_first():
    c = _coordinator()
    c.observe_availability("agent3", "offline", 5.0)
    healed = c.tick(7.5)
    survivor = next(b for b, parts in healed.assignments.items() if 3 in parts)
    c.observe_availability("agent3", "online", 9.0)
    _ack(c, "agent3", [])  # it came back empty (e.g. a spare SD card)
    overlap = c.tick(9.1)
    assert overlap is not None and overlap.assignments["agent3"] == [3] and 3 in overlap.assignments[survivor]
    assert c.tick(9.2) is None  # waits for agent3 to acknowledge running part 3
    _ack(c, "agent3", [3])
    final = c.tick(9.3)
    assert final.assignments == {f"agent{i}": [i] for i in range(4)}


def test_refused_engine_goes_elsewhere_then_stays_unplaced_and_the_fleet_keeps_its_other_parts():
    c = _coordinator(k=2)
    c.observe_availability("agent1", "offline", 1.0)
    healed = c.tick(3.5)
    assert healed.assignments == {"agent0": [0, 1]}
    _ack(c, "agent0", [0], failed={"1": "sha256 mismatch"})
    degraded = c.tick(3.6)
    assert degraded.assignments == {"agent0": [0]} and degraded.unplaced == [1]
    assert "agent0 refused part 1" in degraded.reason and "every live board refused" in degraded.reason
    assert c.stats()["unplaced_parts"] == [1]
    assert c.tick(4.0) is None and c.tick(10.0) is None  # no flapping
    # agent1 returns: part 1 is home again
    c.observe_availability("agent1", "online", 20.0)
    _ack(c, "agent1", [1])
    back = c.tick(20.1) or c.tick(20.2)
    assert back.assignments == {"agent0": [0], "agent1": [1]} and not back.unplaced


def test_too_little_memory_keeps_degrading_and_says_so():
    c = _coordinator(k=2, memory_mb=170)  # 120 MB agent + one ~40 MB part: no room for a second
    c.observe_availability("agent1", "offline", 1.0)
    plan = c.tick(3.5)
    assert plan.unplaced == [1] and plan.assignments == {"agent0": [0]}
    assert "cannot fit" in plan.reason and "needs ~40 MB" in plan.reason


def test_a_spare_takes_the_lost_part_and_the_survivors_keep_theirs():
    c = _coordinator(k=2, spares=1)
    assert c.plan.assignments == {"agent0": [0], "agent1": [1], "spare0": []}
    c.observe_availability("agent0", "offline", 1.0)
    plan = c.tick(3.5)
    assert plan.assignments == {"agent1": [1], "spare0": [0]}


def test_a_board_that_never_comes_online_is_healed_around_after_the_join_grace():
    c = Coordinator(_fleet(2), _manifest(2), heal_after_s=2.0, started=0.0, join_grace_s=10.0)
    c.observe_availability("agent0", "online", 0.0)
    assert c.tick(1.0).assignments == {"agent0": [0], "agent1": [1]}
    assert c.tick(5.0) is None
    plan = c.tick(10.5)
    assert plan.assignments == {"agent0": [0, 1]} and "agent1 never came online" in plan.reason


def test_a_restarted_coordinator_adopts_the_retained_plan():
    c = Coordinator(_fleet(2), _manifest(2), heal_after_s=2.0, started=0.0)
    retained = FleetPlanMessage(plan_id=5, created_ns=1, reason="heal", assignments={"agent0": [0, 1]}, num_parts=2)
    c.adopt(retained)
    c.observe_availability("agent0", "online", 0.0)
    c.observe_availability("agent1", "offline", 0.0)
    assert c.tick(1.0) is None  # keeps the healed plan instead of publishing fleet.yaml's
    assert c.plan.plan_id == 5


def test_plan_message_is_strict_and_its_topic_is_under_the_fleet():
    assert Topics("f").plan == "vitfleet/f/plan"
    plan = FleetPlanMessage(plan_id=1, created_ns=2, reason="r", assignments={"a": [0]}, num_parts=2)
    assert FleetPlanMessage.model_validate_json(plan.model_dump_json()) == plan
    assert plan.parts_of("a") == [0] and plan.parts_of("b") is None
    for bad in ({"plan_id": "1"}, {"assignments": {"a": ["0"]}}, {"extra": 1}, {"num_parts": 0}):
        with pytest.raises(ValidationError):
            FleetPlanMessage.model_validate({**plan.model_dump(), **bad})


def test_fleet_yaml_without_the_new_keys_still_loads_and_the_new_keys_are_checked():
    fleet = parse_fleet({"boards": [{"name": "a"}]})
    assert fleet.aggregator.heal_after_s == 2.0 and fleet.aggregator.serve_engines
    assert (
        parse_fleet({"boards": [{"name": "a"}], "aggregator": {"heal_after_s": None}}).aggregator.heal_after_s is None
    )
    from vitfleet.fleet_config import FleetConfigError

    with pytest.raises(FleetConfigError, match="heal_after_s"):
        parse_fleet({"boards": [{"name": "a"}], "aggregator": {"heal_after_s": -1}})


def test_a_stale_plan_of_another_layout_is_not_adopted():
    c = Coordinator(_fleet(2), _manifest(2), heal_after_s=2.0, started=0.0)
    c.adopt(FleetPlanMessage(plan_id=5, created_ns=1, reason="old", assignments={"gone": [0, 1]}, num_parts=2))
    c.adopt(FleetPlanMessage(plan_id=6, created_ns=1, reason="old", assignments={"agent0": [0]}, num_parts=3))
    assert c.plan is None
    assert c.tick(1.0).assignments == {"agent0": [0], "agent1": [1]}
