"""Throttling seen from the work itself: a board's recent frames per busy second against the best it sustained.

Everywhere (a cloud VM under a CPU quota, a laptop on battery, a board whose sensors say nothing) a board that
computes its frames markedly slower than it did with the same parts is slow now, whatever the cause. The hardware
readers (vcgencmd, jtop, thermal zones) say why; this says by how much.
"""

from __future__ import annotations

from vitfleet.throttle_state import ThrottleState

SLOW_RATIO = 0.8  # below this share of its best rate a board counts as throttled


def with_measured(state: ThrottleState, recent_fps: float | None, best_fps: float | None) -> ThrottleState:
    """`state` with the measured speed ratio filled in; a board whose hardware reader sees nothing but whose rate
    fell below SLOW_RATIO of its best is reported throttled, with `measured` as the source."""
    if recent_fps is None or not best_fps:
        return state
    ratio = round(min(recent_fps / best_fps, 1.0), 3)
    if ratio >= SLOW_RATIO or state.throttled:
        return state.model_copy(update={"speed_ratio": ratio})
    why = f"computes at {ratio:.2f}x the best rate it sustained with these parts"
    return state.model_copy(
        update={"speed_ratio": ratio, "throttled": True, "source": "measured", "reasons": [*state.reasons, why]}
    )
