"""Energy from power samples: the trapezoid rule, with linear interpolation at the window edges.

Power is taken to vary linearly between consecutive samples, so the integral is exact for any
piecewise-linear power trace sampled at its corners, and for any window cut inside it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence


def interpolate(times: Sequence[float], watts: Sequence[float], t: float) -> float:
    """Power at time t, linear between the two samples around it; t must lie within the samples."""
    if not times or t < times[0] or t > times[-1]:
        raise ValueError(
            f"t={t} lies outside the samples [{times[0] if times else None}, {times[-1] if times else None}]"
        )
    i = bisect_left(times, t)
    if times[i] == t:
        return watts[i]
    t0, t1, w0, w1 = times[i - 1], times[i], watts[i - 1], watts[i]
    return w0 + (w1 - w0) * (t - t0) / (t1 - t0)


def trapezoid_energy(times: Sequence[float], watts: Sequence[float], t0: float, t1: float) -> float:
    """Joules between t0 and t1 (t0 <= t1, both within the samples; times strictly increasing)."""
    if len(times) != len(watts):
        raise ValueError("times and watts differ in length")
    if t1 < t0:
        raise ValueError(f"window ends ({t1}) before it starts ({t0})")
    if t1 == t0:
        return 0.0
    w_start, w_end = interpolate(times, watts, t0), interpolate(times, watts, t1)
    inner = range(bisect_right(times, t0), bisect_left(times, t1))
    points = [(t0, w_start)] + [(times[i], watts[i]) for i in inner] + [(t1, w_end)]
    return sum((wa + wb) * (tb - ta) / 2.0 for (ta, wa), (tb, wb) in zip(points, points[1:]))
