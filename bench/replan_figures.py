"""The slow-board figures from a run's prediction log and plans: goodput over time, how fast it recovered, and
whether the plan then stood. Pure functions over the rows `read_predictions` / `read_plans` return."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]
NS = 1_000_000_000


def goodput(rows: list[Row], start_ns: int, end_ns: int) -> float:
    """Whole (non-degraded) answers per second fused in [start_ns, end_ns)."""
    if end_ns <= start_ns:
        return 0.0
    whole = sum(1 for r in rows if not r["degraded"] and start_ns <= r["fused_ns"] < end_ns)
    return whole * NS / (end_ns - start_ns)


def goodput_series(rows: list[Row], start_ns: int, end_ns: int, step_s: float = 1.0) -> list[float]:
    """Goodput in consecutive `step_s` bins from start_ns (the last partial bin is left out)."""
    step = int(step_s * NS)
    return [round(goodput(rows, t, t + step), 1) for t in range(start_ns, end_ns - step + 1, step)]


def recovered_after_s(
    rows: list[Row],
    slowed_ns: int,
    end_ns: int,
    target: float,
    window_s: float = 2.0,
    step_s: float = 0.5,
    stay_s: float = 5.0,
) -> float | None:
    """Seconds from the slowdown until goodput recovered: the start of the first `window_s` window from which every
    window (stepped by `step_s`) over the next `stay_s` seconds reaches `target`; None when that never happened."""
    window, step, stay = int(window_s * NS), int(step_s * NS), int(stay_s * NS)
    starts = list(range(slowed_ns, end_ns - window + 1, step))
    ok = {t: goodput(rows, t, t + window) >= target for t in starts}
    for t in starts:
        held = [u for u in starts if t <= u <= t + stay]
        if t + stay + window <= end_ns and all(ok[u] for u in held):
            return round((t - slowed_ns) / NS, 2)
    return None


def lowest_window(rows: list[Row], start_ns: int, end_ns: int, window_s: float = 2.0, step_s: float = 0.5) -> float:
    """The lowest goodput of any `window_s` window in [start_ns, end_ns) (how far a dip went)."""
    window, step = int(window_s * NS), int(step_s * NS)
    return min((goodput(rows, t, t + window) for t in range(start_ns, end_ns - window + 1, step)), default=0.0)


def plan_story(plans: list[Row], slowed_ns: int) -> dict[str, Any]:
    """The plans made after the slowdown: the re-plan (overlap, then final) and any change after it."""
    after = [p for p in plans if p["created_ns"] > slowed_ns]
    speed = [p for p in after if p["reason"].startswith("speed")]
    final = next((p for p in after if p["reason"].startswith("speed") and "load first" not in p["reason"]), None)
    final = final or (speed[-1] if speed else None)
    later = [] if final is None else [p for p in after if p["created_ns"] > final["created_ns"]]
    return {
        "plans_after_slowdown": [
            {
                "after_s": round((p["created_ns"] - slowed_ns) / NS, 2),
                "assignments": p["assignments"],
                "reason": p["reason"],
            }
            for p in after
        ],
        "replanned_after_s": None if final is None else round((final["created_ns"] - slowed_ns) / NS, 2),
        "final_assignments": None if final is None else final["assignments"],
        "plan_changes_after_replan": len(later),
    }
