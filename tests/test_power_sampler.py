"""Energy integration (exact on synthetic traces), the sampler thread, and energy_between windows."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitfleet.errors import UserError
from vitfleet.power.integrate import interpolate, trapezoid_energy
from vitfleet.power.meter import Meter, MeterReadError
from vitfleet.power.sampler import PowerSampler, PowerWindowError
from vitfleet.power_message import PowerSnapshot


class TraceMeter(Meter):
    """A synthetic trace: power is a known function of a scripted clock (the thing under test is the sampler)."""

    source = "synthetic"

    def __init__(self, clock: ScriptedClock, watts_at, fail_at: set[int] | None = None) -> None:
        self.clock, self.watts_at, self.fail_at, self.calls = clock, watts_at, fail_at or set(), 0

    def read(self) -> float:
        self.calls += 1
        if self.calls in self.fail_at:
            raise MeterReadError(f"scripted failure #{self.calls}")
        return self.watts_at(self.clock.t)


class ScriptedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def piecewise(t: float) -> float:
    """3 W, ramp to 9 W over [2, 4], hold, drop linearly to 1 W over [6, 10]: linear between the corners."""
    if t <= 2:
        return 3.0
    if t <= 4:
        return 3.0 + 3.0 * (t - 2)
    if t <= 6:
        return 9.0
    return 9.0 - 2.0 * (t - 6)


def piecewise_energy(a: float, b: float) -> float:
    """Closed-form integral of piecewise() over [a, b]."""

    def antiderivative(t: float) -> float:
        if t <= 2:
            return 3.0 * t
        if t <= 4:
            return 6.0 + 3.0 * (t - 2) + 1.5 * (t - 2) ** 2
        if t <= 6:
            return 18.0 + 9.0 * (t - 4)
        return 36.0 + 9.0 * (t - 6) - (t - 6) ** 2

    return antiderivative(b) - antiderivative(a)


# --- pure integration -------------------------------------------------------------------------------


def test_trapezoid_is_exact_on_a_piecewise_linear_trace() -> None:
    times = [0.0, 0.7, 2.0, 3.1, 4.0, 5.5, 6.0, 8.25, 10.0]  # every corner sampled, irregular gaps
    watts = [piecewise(t) for t in times]
    assert trapezoid_energy(times, watts, 0.0, 10.0) == pytest.approx(piecewise_energy(0, 10), rel=1e-12)
    assert piecewise_energy(0, 10) == pytest.approx(3 * 2 + 12 + 18 + 20)
    # windows cut between samples are exact too: the edges are interpolated on the same line
    for a, b in [(0.3, 0.6), (1.5, 2.5), (2.2, 7.9), (3.1, 3.1), (5.9, 9.99)]:
        assert trapezoid_energy(times, watts, a, b) == pytest.approx(piecewise_energy(a, b), rel=1e-12, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=30, unique=True), st.floats(0, 1), st.floats(0, 1))
def test_trapezoid_exact_for_any_window_of_a_line(points: list[float], u: float, v: float) -> None:
    times = sorted(points)
    if times[-1] - times[0] < 1e-6:
        return
    line = [2.0 + 0.5 * t for t in times]  # P(t) = 2 + t/2, integral = 2(b-a) + (b^2-a^2)/4
    span = times[-1] - times[0]
    # Clamped: t0 + 1.0 * (t1 - t0) can round one ulp past t1, a window the function rightly refuses.
    a, b = sorted(min(times[-1], times[0] + w * span) for w in (u, v))
    assert trapezoid_energy(times, line, a, b) == pytest.approx(2 * (b - a) + (b * b - a * a) / 4, abs=1e-9)


def test_window_outside_samples_or_backwards_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the samples"):
        trapezoid_energy([1.0, 2.0], [1.0, 1.0], 0.5, 1.5)
    with pytest.raises(ValueError, match="before it starts"):
        trapezoid_energy([1.0, 2.0], [1.0, 1.0], 1.8, 1.2)
    assert interpolate([1.0, 3.0], [2.0, 6.0], 2.5) == pytest.approx(5.0)


# --- the sampler, driven step by step on a scripted clock --------------------------------------------


def _drive(times: list[float], fail_at: set[int] | None = None) -> tuple[PowerSampler, TraceMeter]:
    clock = ScriptedClock()
    meter = TraceMeter(clock, piecewise, fail_at)
    sampler = PowerSampler(meter, rate_hz=10.0, clock=clock, wall_clock=lambda: 1_700_000_000.0)
    for t in times:
        clock.t = t
        sampler.sample_once()
    return sampler, meter


def test_sampler_joules_and_energy_between_are_exact() -> None:
    times = [0.0, 1.0, 2.0, 2.5, 4.0, 6.0, 7.0, 10.0]
    sampler, _ = _drive(times)
    snap = sampler.snapshot()
    assert snap.joules == pytest.approx(piecewise_energy(0, 10), rel=1e-12)
    assert snap.watts == pytest.approx(1.0) and snap.ts == 1_700_000_000.0 and snap.source == "synthetic"
    # "exactly the window the agent was inferring": a window that starts and ends between samples
    assert sampler.energy_between(1.25, 6.5) == pytest.approx(piecewise_energy(1.25, 6.5), rel=1e-12)


def test_failed_reads_are_counted_and_skipped_not_raised() -> None:
    sampler, meter = _drive([0.0, 1.0, 2.0, 4.0, 6.0, 10.0], fail_at={2, 5})
    assert sampler.read_errors == 2 and sampler.samples == 4  # samples at t = 0, 2, 4, 10
    # a failed read leaves a gap the trapezoid bridges with a chord: still exact over [0, 4], where the
    # trace is linear between the kept samples; over [4, 10] (a bend at 6 was missed) it is the chord
    assert sampler.snapshot().joules == pytest.approx(piecewise_energy(0, 4) + (9 + 1) / 2 * 6)


def test_energy_between_refuses_windows_it_cannot_cover() -> None:
    sampler, _ = _drive([5.0, 6.0, 7.0])
    with pytest.raises(PowerWindowError, match="before the oldest kept sample"):
        sampler.energy_between(4.0, 6.0)
    with pytest.raises(PowerWindowError, match="no power sample at or after the window end"):
        sampler.energy_between(5.5, 8.0)  # not running: no waiting, a clear error
    with pytest.raises(PowerWindowError, match="before it starts"):
        sampler.energy_between(6.5, 6.0)


def test_frames_and_snapshot_round_trip() -> None:
    sampler, _ = _drive([0.0, 1.0])
    sampler.add_frames()
    sampler.add_frames(41)
    snap = sampler.snapshot()
    assert snap.frames == 42 and not snap.estimated
    assert PowerSnapshot.from_json(snap.to_json()) == snap
    with pytest.raises(ValueError, match="frames only go up"):
        sampler.add_frames(-1)


def test_nonsense_watts_are_counted_as_errors() -> None:
    clock = ScriptedClock()
    values = iter([2.0, float("nan"), -1.0, 2.0])
    sampler = PowerSampler(TraceMeter(clock, lambda t: next(values)), clock=clock)
    for t in (0.0, 1.0, 2.0, 3.0):
        clock.t = t
        sampler.sample_once()
    assert sampler.read_errors == 2 and sampler.snapshot().joules == pytest.approx(6.0)


def test_slow_meter_sets_the_floor_of_the_period() -> None:
    class Slow(TraceMeter):
        min_interval_s = 0.25

    assert PowerSampler(Slow(ScriptedClock(), piecewise), rate_hz=100).period_s == 0.25
    with pytest.raises(UserError, match="positive number of Hz"):
        PowerSampler(Slow(ScriptedClock(), piecewise), rate_hz=0)


# --- the real thread on the real clock -----------------------------------------------------------------


class SteadyMeter(Meter):
    source = "steady"

    def __init__(self, watts: float) -> None:
        self.watts = watts
        self.threads: set[str] = set()

    def read(self) -> float:
        self.threads.add(threading.current_thread().name)
        return self.watts


def test_thread_samples_at_the_rate_and_integrates_the_inference_window() -> None:
    meter = SteadyMeter(5.0)
    with PowerSampler(meter, rate_hz=50.0) as sampler:
        t0 = sampler.now()
        time.sleep(0.3)  # "inference"
        for _ in range(12):
            sampler.add_frames()
        t1 = sampler.now()
        energy = sampler.energy_between(t0, t1)  # waits for the first sample after t1
        assert sampler.running
    assert not sampler.running
    assert energy == pytest.approx(5.0 * (t1 - t0), rel=1e-9)
    assert 10 <= sampler.samples <= 25  # ~0.3 s at 50 Hz, generous for a loaded 2-core box
    assert any(name.startswith("power-sampler") for name in meter.threads)
    snap = sampler.snapshot()
    assert snap.frames == 12 and snap.joules == pytest.approx(5.0 * sampler.sampled_seconds)


def test_stop_is_prompt_and_restart_is_refused() -> None:
    sampler = PowerSampler(SteadyMeter(1.0), rate_hz=0.5).start()  # a 2 s period must not delay stop()
    began = time.monotonic()
    sampler.stop()
    assert time.monotonic() - began < 0.5
    with pytest.raises(UserError, match="already running"):
        sampler.start()
