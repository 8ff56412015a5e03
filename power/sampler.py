"""PowerSampler: reads a meter on a background thread and integrates energy as it goes.

Samples are stamped on the monotonic clock (time.monotonic(), the same clock as
time.perf_counter() on Linux) at the midpoint of each read. joules accumulate by the trapezoid
rule between consecutive samples; energy_between(t0, t1) integrates exactly the window
[t0, t1] (monotonic times) over the retained samples, interpolating at the edges, so a benchmark
can take `t0 = sampler.now()` before inference and `t1 = sampler.now()` after.
Energy per frame = delta joules / delta frames, where the agent calls add_frames() per inference.
A failed read is counted and logged (once per distinct message), never raised into the thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from vitfleet.errors import UserError
from vitfleet.power.integrate import trapezoid_energy
from vitfleet.power.meter import Meter
from vitfleet.power_message import PowerSnapshot

log = logging.getLogger(__name__)


class PowerWindowError(UserError):
    """energy_between() was asked for a window the sampler has no samples around."""


class PowerSampler:
    def __init__(
        self,
        meter: Meter,
        rate_hz: float = 10.0,
        *,
        history_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise UserError(f"power sampling rate must be a positive number of Hz, got {rate_hz}")
        self.meter = meter
        # A meter whose read is costly (a process spawn) sets a floor under the period.
        self.period_s = max(1.0 / rate_hz, meter.min_interval_s)
        self._clock, self._wall = clock, wall_clock
        keep = int(history_s / self.period_s) + 2
        self._times: deque[float] = deque(maxlen=keep)
        self._watts: deque[float] = deque(maxlen=keep)
        self._joules = 0.0
        self._first_t: float | None = None  # kept apart from the bounded history, for sampled_seconds
        self._frames = 0
        self._lock = threading.Lock()
        self._new_sample = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read_errors = 0
        self._logged_errors: set[str] = set()

    # -- sampling -------------------------------------------------------------------------------
    def now(self) -> float:
        """The sampler's clock: use it for energy_between() windows."""
        return self._clock()

    def sample_once(self) -> bool:
        """Take one reading and integrate it; False (and counted) when the meter failed or gave nonsense."""
        before = self._clock()
        try:
            watts = float(self.meter.read())
            if not math.isfinite(watts) or watts < 0:
                raise ValueError(f"meter {self.meter.source} returned {watts} W")
        except Exception as exc:  # any meter failure is counted, logged and survived
            self._count_error(exc)
            return False
        t = (before + self._clock()) / 2.0
        with self._new_sample:
            if self._times and t <= self._times[-1]:
                return False  # a clock that did not advance adds no information
            if self._times:
                self._joules += (self._watts[-1] + watts) * (t - self._times[-1]) / 2.0
            else:
                self._first_t = t
            self._times.append(t)
            self._watts.append(watts)
            self._new_sample.notify_all()
        return True

    def _count_error(self, exc: Exception) -> None:
        self.read_errors += 1
        message = str(exc)
        if message not in self._logged_errors and len(self._logged_errors) < 100:
            self._logged_errors.add(message)
            log.warning("power read from %s failed (%d so far): %s", self.meter.source, self.read_errors, message)

    def _run(self) -> None:
        deadline = self._clock()
        while True:
            deadline += self.period_s
            wait = deadline - self._clock()
            if wait < 0:  # fell behind (slow read): skip the missed ticks instead of bursting
                deadline = self._clock()
                wait = 0.0
            if self._stop.wait(wait):
                return
            self.sample_once()

    def start(self) -> PowerSampler:
        if self._thread is not None:
            raise UserError("this PowerSampler is already running; make a new one to restart")
        self.sample_once()
        self._thread = threading.Thread(target=self._run, name=f"power-sampler:{self.meter.source}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (the meter stays open: its owner closes it). Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 + self.period_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> PowerSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- results --------------------------------------------------------------------------------
    def add_frames(self, n: int = 1) -> None:
        if n < 0:
            raise ValueError(f"frames only go up, got add_frames({n})")
        with self._lock:
            self._frames += n

    def snapshot(self) -> PowerSnapshot:
        with self._lock:
            watts = self._watts[-1] if self._watts else 0.0
            return PowerSnapshot(
                ts=self._wall(),
                watts=watts,
                joules=self._joules,
                frames=self._frames,
                source=self.meter.source,
                estimated=self.meter.estimated,
            )

    def latest(self) -> tuple[float, float] | None:
        """(time, watts) of the newest sample, None before the first."""
        with self._lock:
            return (self._times[-1], self._watts[-1]) if self._times else None

    @property
    def sampled_seconds(self) -> float:
        """Time from the first to the latest sample: the span `joules` covers."""
        with self._lock:
            return self._times[-1] - self._first_t if self._times and self._first_t is not None else 0.0

    @property
    def samples(self) -> int:
        with self._lock:
            return len(self._times)

    def energy_between(self, t0: float, t1: float, timeout_s: float | None = None) -> float:
        """Joules over [t0, t1] on the sampler's clock. Waits (bounded) for a sample at or after t1."""
        if t1 < t0:
            raise PowerWindowError(f"energy window ends at {t1} before it starts at {t0}")
        wait_s = timeout_s if timeout_s is not None else 3 * self.period_s + 1.0
        with self._new_sample:
            if not self._times or self._times[-1] < t1:
                if self.running:
                    self._new_sample.wait_for(lambda: bool(self._times) and self._times[-1] >= t1, wait_s)
            if not self._times or self._times[-1] < t1:
                last = f"{self._times[-1]:.3f}" if self._times else "none"
                raise PowerWindowError(
                    f"no power sample at or after the window end {t1:.3f} (last sample: {last}; "
                    f"{self.read_errors} failed reads); is the sampler running?"
                )
            if t0 < self._times[0]:
                raise PowerWindowError(
                    f"energy window starts at {t0:.3f}, before the oldest kept sample "
                    f"{self._times[0]:.3f}; start the sampler before the window or raise "
                    "history_s"
                )
            times, watts = list(self._times), list(self._watts)
        return trapezoid_energy(times, watts, t0, t1)
