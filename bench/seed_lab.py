"""Seed scale, measured: lab fleets of K int8 boards (each agent its own cgroup quota of q cores and its own network
namespace on the LAN profile, JPEG frames) and the teacher as one int8 board under the same q, through the same
camera node, broker and aggregator. The speedup is then one measured e2e latency over another.

q per K comes from `SeedSettings.lab_cores_for`; a teacher board runs once per distinct q. Each lockstep camera is
paced slower than the fleet answers (from the isolated timing / q), so no frame waits for its admission credit after
its capture stamp.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitfleet.bench.seed_settings import SeedSettings

PRECISION = "int8"
# Added to compute / q when pacing a lockstep camera: the LAN hops, JPEG and the quota's own stalls (a margin
# above those seen on a K = 4 ViT-B/16 fleet), so a frame is never offered before the previous one's credit is back.
LOCKSTEP_ALLOWANCE_MS = 30.0


def lab_unavailable() -> str | None:
    from vitfleet.lab.quota_fleet import lab_unavailable as why

    return why()


def _lockstep_fps(expected_ms: float, s: SeedSettings) -> float:
    """Paced at 1/2.5 of the expected answer rate (and never faster than the plain fleets' pace)."""
    return round(min(s.lockstep_fps, 1000.0 / (2.5 * (expected_ms + LOCKSTEP_ALLOWANCE_MS))), 3)


def _one(
    engines: Path, work: Path, cores: float, expected_ms: float, camera_uri: str, s: SeedSettings
) -> dict[str, Any]:
    from vitfleet.bench.fleet_run import run_fleet
    from vitfleet.fleet.local_fleet import LocalFleetOptions
    from vitfleet.lab.quota_fleet import LabOptions, QuotaFleet

    lab = LabOptions(cores=cores, profile=s.lab_profile, period_us=s.lab_period_us)

    def factory(e: Path, w: Path, o: LocalFleetOptions) -> QuotaFleet:
        return QuotaFleet(e, w, o, lab)

    fps = _lockstep_fps(expected_ms, s)
    frames = max(s.lab_lockstep_frames, s.lab_pipelined_frames)
    timeout = 60 + frames * (1.0 / fps + 3 * expected_ms / 1e3)
    run = run_fleet(
        engines,
        work,
        s.lab_lockstep_frames,
        s.lab_pipelined_frames,
        s.max_in_flight,
        camera_uri=camera_uri,
        encoding="jpeg",
        lockstep_fps=fps,
        fleet_factory=factory,
        camera_timeout_s=timeout,
    )
    return {**run, "cores_per_board": cores, "profile": s.lab_profile, "expected_ms": round(expected_ms, 2)}


def _engine_at_quota(
    path: Path, image: Any, q: float, full_core_ms: float, s: SeedSettings, work: Path
) -> dict[str, Any]:
    from vitfleet.bench.seed_quota_timing import time_under_quota

    try:
        return time_under_quota(path, image, q, full_core_ms, s.lab_period_us, s.lab_quota_timing_runs, work)
    except Exception as exc:  # noqa: BLE001 - reported beside the fleet, which still runs
        return {"error": f"{type(exc).__name__}: {exc}"}


def lab_fleets(
    t_label: str,
    teacher_dir: Path,
    teacher_int8: Path,
    teacher_int8_ms: float,
    timed: list[dict],
    bundles: list,
    camera_uri: str,
    s: SeedSettings,
    log: Callable[[str], None],
    image: Any = None,
) -> dict[str, Any]:
    """{"fleets": {"<method> K=<k> int8": run}, "teacher_boards": {"<q>": run}, "cores": {k: q},
    "engines_at_quota": {name: timing}} or {"error"}."""
    from vitfleet.bench.seed_teacher_board import teacher_board_engines

    why = lab_unavailable()
    if why:
        return {"error": f"no lab fleets: {why}"}
    ncpu = len(os.sched_getaffinity(0))
    out: dict[str, Any] = {
        "fleets": {},
        "teacher_boards": {},
        "cores": {},
        "engines_at_quota": {},
        "profile": s.lab_profile,
        "period_us": s.lab_period_us,
        "host_cores": s.lab_host_cores,
        "machine_cores": ncpu,
    }
    slowest = {
        (b["method"], b["parts"]): max(b["precisions"][PRECISION]["parts"], key=lambda p: p["median_ms"])
        for b in timed
        if PRECISION in b["precisions"]
    }
    work = s.runs / "lab-run"
    for k in s.lab_fleet_parts:
        q = s.lab_cores_for(k, ncpu)
        out["cores"][str(k)] = q
        for b in (b for b in bundles if b.parts == k):
            name = f"{b.method} K={k} {PRECISION}"
            part = slowest[(b.method, k)]
            log(
                f"{t_label} {name}: slowest part's engine alone at {q} cores, then a lab fleet of {k} boards at {q} "
                f"cores each, {s.lab_profile} links, JPEG frames"
            )
            out["engines_at_quota"][name] = _engine_at_quota(
                Path(part["file"]), image, q, part["median_ms"], s, work / "quota-timing"
            )
            try:
                out["fleets"][name] = _one(
                    b.engines_dir,
                    work / f"{t_label}-{name}".replace(" ", "_").replace("/", "-"),
                    q,
                    part["median_ms"] / q,
                    camera_uri,
                    s,
                )
            except Exception as exc:  # noqa: BLE001 - the report says which fleet failed and why, and goes on
                out["fleets"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    board = teacher_board_engines(teacher_dir, teacher_int8, PRECISION, s.runs / f"teacher-board-{teacher_dir.name}")
    for q in sorted(set(out["cores"].values())):
        log(f"{t_label} teacher int8 engine alone at {q} cores, then as one board, {s.lab_profile} link, JPEG frames")
        out["engines_at_quota"][f"teacher {q}"] = _engine_at_quota(
            teacher_int8, image, q, teacher_int8_ms, s, work / "quota-timing"
        )
        try:
            out["teacher_boards"][str(q)] = _one(
                board, work / f"{t_label}-teacher-{q}".replace("/", "-"), q, teacher_int8_ms / q, camera_uri, s
            )
        except Exception as exc:  # noqa: BLE001
            out["teacher_boards"][str(q)] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
