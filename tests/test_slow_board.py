"""The slow-board emulation (`--slow-agent N`, `--emulate-slowdown N`) behaves like a steadily slower board: it
scales the typical compute time, so one scheduler stall on the shared test machine is not multiplied by N (that
turned frames of the overload test degraded under a loaded CI run)."""

from __future__ import annotations

import pytest

from vitfleet.agent.slow_board import SlowBoardEmulation


def test_a_single_stall_is_not_multiplied_by_the_slowdown() -> None:
    emulation = SlowBoardEmulation(12)
    for _ in range(10):
        steady = emulation.extra_seconds(0.001)
    assert steady == pytest.approx(0.011)
    stalled = emulation.extra_seconds(0.020)  # this frame was descheduled for 19 ms
    assert stalled == pytest.approx(0.011)  # the emulated board stays 12x a 1-ms compute, not 12x 20 ms


def test_a_steady_change_of_speed_moves_the_emulated_board_with_it() -> None:
    emulation = SlowBoardEmulation(4, window=9)
    for _ in range(9):
        emulation.extra_seconds(0.001)
    extras = [emulation.extra_seconds(0.005) for _ in range(9)]
    assert extras[0] == pytest.approx(0.003)
    assert extras[-1] == pytest.approx(0.015)


def test_no_slowdown_adds_nothing_and_a_speedup_is_refused() -> None:
    assert SlowBoardEmulation(1.0).extra_seconds(0.5) == 0.0
    assert not SlowBoardEmulation(1.0).active
    with pytest.raises(ValueError, match="slowdown must be >= 1"):
        SlowBoardEmulation(0.5)
