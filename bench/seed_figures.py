"""Seed-scale figures from one run's measurements: the per-(teacher, method, K, precision) rows, the measured lab
fleets against the teacher as one board, and the *estimated* board table. Pure functions over the results dict: no
timing here.

Critical path (computed): slowest part (isolated median) + transport + fusion, the transport being the lockstep
breakdown of a real fleet of the *same* K and method (the lab fleet when it ran, else an unquotaed real fleet of that
K); a row without one has no critical path rather than another K's transport.
"""

from __future__ import annotations

from typing import Any

from vitfleet.bench.contenders import transport_from_run
from vitfleet.bench.seed_settings import UNTRAINED_LABEL, SeedSettings

# Published board figures (cite as published, not measured here): ViT-Tiny/16 at 224², batch 1, NetsPresso device
# tables, via /work/shared/FIELD-NOTES.md. `here` is the precision measured on this CPU to derive the factor.
PUBLISHED_BOARDS: list[dict[str, Any]] = [
    {"board": "Raspberry Pi 4B", "published_ms": 197.0, "runtime": "TFLite int8", "here": "int8"},
    {"board": "Raspberry Pi 5", "published_ms": 49.8, "runtime": "TFLite int8", "here": "int8"},
    {"board": "Jetson Orin Nano", "published_ms": 3.1, "runtime": "TensorRT fp16", "here": "fp32"},
]
PUBLISHED_SOURCE = "NetsPresso device tables (ViT-Tiny 224², batch 1), as cited in FIELD-NOTES.md"
# Published figures of a whole teacher on a board: used instead of scaling this machine's teacher timing wherever one
# exists (timm name, board) -> figure. No ViT-B/16 or DeiT-S figure for a Pi was found (FIELD-NOTES).
PUBLISHED_TEACHERS: dict[tuple[str, str], dict[str, Any]] = {
    ("vit_base_patch16_224", "Jetson Orin Nano"): {
        "published_ms": 5.7,
        "runtime": "TensorRT 10.3 fp16, batch 1, GPU time (LayerNorm kept fp32)",
        "source": "onnxsim's NVIDIA scripts README, Orin Nano 8 GB, as cited in FIELD-NOTES.md",
    },
}


def _fleet_run_for(teacher: dict[str, Any], method: str, parts: int) -> tuple[dict[str, Any] | None, str]:
    """The real fleet whose transport a (method, K) row uses, and where it came from: this K's lab fleet, else this
    K's unquotaed fleet, else none."""
    lab = teacher.get("lab", {}).get("fleets", {})
    for name, r in lab.items():
        if name.startswith(f"{method} K={parts} ") and "error" not in r:
            return r, (
                f"measured: {teacher['label']} {name} lab fleet ({r['cores_per_board']} cores per board, "
                f"{r['profile']} link), lockstep breakdown p50"
            )
    for name, r in teacher.get("fleet_runs", {}).items():
        if name.startswith(f"{method} K={parts} ") and "error" not in r:
            return r, f"measured: {teacher['label']} {name} unquotaed real fleet, lockstep breakdown p50"
    return None, f"none: no real K={parts} {method} fleet ran"


def fleet_rows(results: dict[str, Any], s: SeedSettings) -> list[dict[str, Any]]:
    rows = []
    for t in results["teachers"]:
        t32 = t["fp32"]
        for b in t["bundles"]:
            run, source = _fleet_run_for(t, b["method"], b["parts"])
            transport = transport_from_run(run) if run else None
            for precision, m in b["precisions"].items():
                slowest = max(p["median_ms"] for p in m["parts"])
                fusion = m["fusion"]["median_ms"]
                path = None if transport is None else slowest + fusion + transport
                same = t.get(precision)
                largest = max(p["bytes"] for p in m["parts"])
                row = {
                    "label": UNTRAINED_LABEL,
                    "teacher": t["label"],
                    "method": b["method"],
                    "parts": b["parts"],
                    "precision": precision,
                    "budget": b["budget"],
                    "largest_part_params": max(b["part_params"]),
                    "teacher_params": t["params"],
                    "slowest_part_ms": slowest,
                    "fusion_ms": fusion,
                    "transport_ms": transport,
                    "transport_source": source,
                    "critical_path_ms": path,
                    "latency_kind": "computed",
                    "compute_speedup_same_precision": None if same is None else same["median_ms"] / slowest,
                    "compute_speedup_vs_teacher_fp32": t32["median_ms"] / slowest,
                    # Headline: teacher and parts at the same precision; the fp32-teacher ratio is shown beside it.
                    "speedup_vs_teacher_same_precision": None
                    if same is None or path is None
                    else same["median_ms"] / path,
                    "speedup_vs_teacher_fp32": None if path is None else t32["median_ms"] / path,
                    "largest_board_bytes": largest,
                    "all_boards_bytes": sum(p["bytes"] for p in m["parts"]),
                    "teacher_fp32_bytes": t32["bytes"],
                    "size_reduction_largest": t32["bytes"] / largest,
                    "feature_dim": max(b["feature_dims"]),
                    "feature_message_bytes": b["feature_message_bytes"],
                    "feature_packet_bytes": b["feature_packet_bytes"],
                }
                if run and "cores_per_board" not in run and run["precision"] == precision:  # same-speed boards
                    row["measured_e2e_p50_ms"] = run["lockstep"].get("e2e_p50_ms")
                    row["latency_kind"] = "computed (real fleet measured beside it)"
                rows.append(row)
    return rows


def _fleet_figures(run: dict[str, Any]) -> dict[str, Any]:
    lock, piped = run["lockstep"], run["pipelined"]
    return {
        "e2e_p50_ms": lock.get("e2e_p50_ms"),
        "e2e_p99_ms": lock.get("e2e_p99_ms"),
        "fps": run.get("throughput_fps"),
        "answered": lock.get("predictions"),
        "sent": lock.get("frames_sent"),
        "lost": (lock.get("lost") or 0) + (piped.get("lost") or 0),
        "pipelined_answered": piped.get("predictions"),
        "pipelined_sent": piped.get("frames_sent"),
        "transport_ms": transport_from_run(run) if lock.get("breakdown_p50_ms") else None,
    }


def _engines_at_quota(timings: dict[str, Any], name: str, q: float) -> dict[str, Any] | None:
    """The slowest part's and the teacher's engines timed alone inside the same quota, and their ratio."""
    part, teacher = timings.get(name), timings.get(f"teacher {q}")
    if not part or not teacher or "error" in part or "error" in teacher:
        return None
    return {
        "slowest_part": part,
        "teacher": teacher,
        "speedup_paced": teacher["paced_median_ms"] / part["paced_median_ms"],
        "speedup_back_to_back": teacher["back_to_back_median_ms"] / part["back_to_back_median_ms"],
    }


def measured_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each lab fleet beside the teacher as one board at the same quota: measured / measured, and the computed
    figures they replace (isolated, full core: teacher int8 / critical path) and estimate (same, at the quota)."""
    rows = []
    for t in results["teachers"]:
        lab = t.get("lab") or {}
        for name, run in lab.get("fleets", {}).items():
            method, k = name.split()[0], int(name.split()[1].removeprefix("K="))
            q = lab["cores"][str(k)]
            teacher_run = lab.get("teacher_boards", {}).get(str(q), {})
            row: dict[str, Any] = {
                "label": UNTRAINED_LABEL,
                "teacher": t["label"],
                "method": method,
                "parts": k,
                "precision": "int8",
                "cores_per_board": q,
                "profile": lab.get("profile"),
                "latency_kind": "measured (lab fleet vs teacher board, same quota and link)",
            }
            if "error" in run or "error" in teacher_run or not teacher_run:
                row["error"] = run.get("error") or teacher_run.get("error") or "no teacher board at this quota"
                rows.append(row)
                continue
            fleet, teacher = _fleet_figures(run), _fleet_figures(teacher_run)
            row["engines_at_quota"] = _engines_at_quota(lab.get("engines_at_quota", {}), name, q)
            row.update(
                {
                    "fleet": fleet,
                    "teacher_board": teacher,
                    "speedup_e2e_p50": teacher["e2e_p50_ms"] / fleet["e2e_p50_ms"],
                    "speedup_e2e_p99": teacher["e2e_p99_ms"] / fleet["e2e_p99_ms"],
                    "speedup_fps": (fleet["fps"] / teacher["fps"]) if fleet["fps"] and teacher["fps"] else None,
                }
            )
            computed = next(
                (
                    r
                    for r in results["rows"]
                    if r["teacher"] == t["label"]
                    and r["method"] == method
                    and r["parts"] == k
                    and r["precision"] == "int8"
                ),
                None,
            )
            if computed is not None:
                row["computed_speedup_full_core"] = computed["speedup_vs_teacher_same_precision"]
                row["computed_speedup_fp32_teacher"] = computed["speedup_vs_teacher_fp32"]
                # The same arithmetic at the quota: every compute / q, plus each fleet's own measured transport.
                fleet_est = computed["slowest_part_ms"] / q + computed["fusion_ms"] + (fleet["transport_ms"] or 0.0)
                teacher_est = t["int8"]["median_ms"] / q + (teacher["transport_ms"] or 0.0)
                row["estimated_fleet_ms_at_quota"] = fleet_est
                row["estimated_teacher_ms_at_quota"] = teacher_est
                row["estimated_speedup_at_quota"] = teacher_est / fleet_est
            rows.append(row)
    return rows


def board_factors(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """factor = published ms of ViT-Tiny-224 on the board / ViT-Tiny-224 measured here at the matching precision."""
    out = []
    for b in PUBLISHED_BOARDS:
        here = reference[b["here"]]["median_ms"]
        out.append({**b, "here_ms": here, "factor": b["published_ms"] / here, "source": PUBLISHED_SOURCE})
    return out


def lan_ms(message_bytes: float, s: SeedSettings) -> float:
    """Assumed LAN hop: serialisation at `lan_mbit_s` plus `lan_hop_ms` (switch, stacks, broker)."""
    return message_bytes * 8 / (s.lan_mbit_s * 1e3) + s.lan_hop_ms


def projection(results: dict[str, Any], s: SeedSettings, parts: int = 4) -> list[dict[str, Any]]:
    """*Estimated* K-board fleets vs the teacher on one such board: slowest part x factor + assumed LAN + fusion x
    factor, against the teacher's *published* time on the board where one exists, else its time here x factor."""
    factors = board_factors(results["reference"])
    jpeg = results["jpeg"]
    frame_bytes = jpeg["frame_message_bytes_mean"]
    rows = []
    for t in results["teachers"]:
        for b in (b for b in t["bundles"] if b["parts"] == parts):
            for f in factors:
                m = b["precisions"].get(f["here"])
                if m is None or t.get(f["here"]) is None:
                    continue
                slowest = max(p["median_ms"] for p in m["parts"]) * f["factor"]
                fusion = m["fusion"]["median_ms"] * f["factor"]
                network = lan_ms(frame_bytes, s) + lan_ms(b["feature_message_bytes"], s) + s.lan_hop_ms
                codec = jpeg["encode_p50_ms"] + jpeg["decode_p50_ms"]
                fleet = slowest + fusion + network + codec
                published = PUBLISHED_TEACHERS.get((t.get("timm_name", ""), f["board"]))
                if published:
                    teacher = published["published_ms"]
                    teacher_source = f"published: {published['runtime']} ({published['source']})"
                else:
                    teacher = t[f["here"]]["median_ms"] * f["factor"]
                    teacher_source = (
                        f"estimate: {t[f['here']]['median_ms']:.1f} ms {f['here']} here x {f['factor']:.3g}"
                    )
                speedup = teacher / fleet
                rows.append(
                    {
                        "label": f"estimate (projected, not measured); {UNTRAINED_LABEL}",
                        "teacher": t["label"],
                        "method": b["method"],
                        "parts": parts,
                        "board": f["board"],
                        "precision_here": f["here"],
                        "factor": f["factor"],
                        "teacher_on_board_ms": teacher,
                        "teacher_source": teacher_source,
                        "slowest_part_ms": slowest,
                        "fusion_ms": fusion,
                        "lan_ms": network,
                        "jpeg_codec_ms_x86": codec,
                        "fleet_ms": fleet,
                        "speedup": speedup,
                        "pays": speedup > 1.0,
                    }
                )
    return rows


def targets(rows: list[dict[str, Any]], measured: list[dict[str, Any]], s: SeedSettings) -> list[dict[str, Any]]:
    """The seed scale's targets, judged on this run: the measured K = 4 ViT-B/16 int8 speedups (same quota, teacher
    int8 as one board), and the size and feature-bytes targets."""
    out = []
    for method, goal in (("edvit", s.measured_goal["edvit"]), ("devit", s.measured_goal["devit"])):
        m = next(
            (r for r in measured if r["teacher"].startswith("ViT-B") and r["method"] == method and r["parts"] == 4),
            None,
        )
        target = (
            f"ViT-B/16 K=4 {method} int8 fleet, measured e2e p50 speedup over the int8 teacher as one board "
            f"(same quota, {s.lab_profile} link) >= {goal:g}x (issue 31)"
        )
        if m is None or "speedup_e2e_p50" not in m:
            out.append({"target": target, "value": (m or {}).get("error", "no lab fleet ran"), "met": None})
            continue
        out.append(
            {
                "target": target,
                "value": f"{m['speedup_e2e_p50']:.2f}x (frames/s {m['speedup_fps']:.2f}x; "
                f"computed critical path, full core: "
                f"{m.get('computed_speedup_full_core') or 0:.2f}x)",
                "met": m["speedup_e2e_p50"] >= goal,
            }
        )
    for r in rows:
        if r["precision"] == "int8" and r["parts"] == 4:
            out.append(
                {
                    "target": f"{r['teacher']} {r['method']} K=4 int8: largest board <= 1/{1 / s.size_target:.0f} "
                    "of the teacher's fp32 bytes",
                    "value": f"1/{r['size_reduction_largest']:.1f}",
                    "met": r["largest_board_bytes"] <= s.size_target * r["teacher_fp32_bytes"],
                }
            )
            # The target counts the features (float16 vector); the message adds the protocol's 72-byte header.
            feature_bytes = 2 * r["feature_dim"]
            out.append(
                {
                    "target": f"{r['teacher']} {r['method']} K=4: feature bytes per board per frame <= "
                    f"{s.feature_target_bytes} B",
                    "value": f"{feature_bytes} B (message with header {r['feature_message_bytes']} B)",
                    "met": feature_bytes <= s.feature_target_bytes,
                }
            )
    return out
