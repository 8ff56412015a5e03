"""Fleet watts, fleet joules and millijoules per fused frame from the boards' power messages."""

from __future__ import annotations

import pytest

from vitfleet.power.fleet_energy import FleetEnergy, energy_per_frame_mj
from vitfleet.power_message import PowerSnapshot


def snap(
    ts: float, watts: float, joules: float, frames: int = 0, source: str = "rapl", estimated: bool = False
) -> PowerSnapshot:
    return PowerSnapshot(ts=ts, watts=watts, joules=joules, frames=frames, source=source, estimated=estimated)


def test_energy_per_frame_is_the_sum_over_boards_of_delta_joules_over_delta_fused_frames() -> None:
    now = [1000.0]
    fleet = FleetEnergy(clock=lambda: now[0])
    fleet.update("pi-a", snap(1000, 4.0, 10.0), fused_frames=0)
    fleet.update("nano-b", snap(1000, 6.0, 50.0, source="tegrastats"), fused_frames=0)
    fleet.update("pi-a", snap(1010, 4.2, 52.0), fused_frames=400)  # +42 J
    fleet.update("nano-b", snap(1010, 6.1, 110.0, source="tegrastats"), fused_frames=400)  # +60 J
    now[0] = 1010.5
    report = fleet.report(fused_frames=400)
    assert report.fleet_joules == pytest.approx(102.0)
    assert report.mj_per_frame == pytest.approx((42.0 / 400 + 60.0 / 400) * 1000)  # 255 mJ per frame
    assert report.fleet_watts == pytest.approx(10.3) and not report.estimated
    assert [b.board for b in report.boards] == ["nano-b", "pi-a"]
    assert report.to_dict()["boards"][1]["mj_per_frame"] == pytest.approx(105.0)


def test_a_late_board_is_charged_only_for_frames_fused_while_it_reported() -> None:
    fleet = FleetEnergy(clock=lambda: 2000.0)
    fleet.update("a", snap(1990, 5.0, 0.0), fused_frames=0)
    fleet.update("a", snap(2000, 5.0, 50.0), fused_frames=1000)
    fleet.update("late", snap(1995, 3.0, 100.0, estimated=True), fused_frames=600)
    fleet.update("late", snap(2000, 3.0, 112.0, estimated=True), fused_frames=1000)
    report = fleet.report(fused_frames=1000)
    by_board = {b.board: b for b in report.boards}
    assert by_board["late"].fused_frames == 400 and by_board["late"].joules == pytest.approx(12.0)
    assert report.mj_per_frame == pytest.approx(50.0 / 1000 * 1000 + 12.0 / 400 * 1000)
    assert report.estimated  # one estimated board makes the fleet figure an estimate


def test_stale_boards_keep_their_energy_but_not_their_watts() -> None:
    now = [100.0]
    fleet = FleetEnergy(stale_after_s=5.0, clock=lambda: now[0])
    fleet.update("gone", snap(90, 7.0, 0.0), fused_frames=0)
    fleet.update("gone", snap(100, 7.0, 70.0), fused_frames=100)
    fleet.update("here", snap(100, 2.0, 0.0), fused_frames=100)
    now[0] = 120.0
    fleet.update("here", snap(120, 2.0, 40.0), fused_frames=300)
    report = fleet.report(fused_frames=300)
    assert report.fleet_watts == pytest.approx(2.0)
    assert {b.board: b.stale for b in report.boards} == {"gone": True, "here": False}
    assert report.fleet_joules == pytest.approx(110.0)


def test_a_restarted_board_keeps_its_earlier_energy() -> None:
    fleet = FleetEnergy(clock=lambda: 50.0)
    fleet.update("a", snap(10, 5.0, 100.0), fused_frames=0)
    fleet.update("a", snap(20, 5.0, 150.0), fused_frames=10)  # +50 J
    fleet.update("a", snap(30, 5.0, 4.0), fused_frames=20)  # sampler restarted: 4 J since restart
    fleet.update("a", snap(40, 5.0, 24.0), fused_frames=30)  # +20 J
    assert fleet.report(fused_frames=30).fleet_joules == pytest.approx(50.0 + 24.0)


def test_no_frames_yet_means_no_energy_per_frame() -> None:
    fleet = FleetEnergy(clock=lambda: 0.0)
    assert fleet.report(fused_frames=0).mj_per_frame is None and fleet.report(0).fleet_watts == 0.0
    fleet.update("a", snap(1, 5.0, 3.0), fused_frames=7)
    assert fleet.report(fused_frames=7).mj_per_frame is None  # its window has no fused frame yet
    assert energy_per_frame_mj([(2.0, 0), (3.0, 1000)]) == pytest.approx(3.0)
