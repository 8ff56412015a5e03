"""Seed-scale figures from one run's measurements: the per-(teacher, method, K, precision) rows and the
*projected* board table. Pure functions over the results dict: no timing here.

Critical path (as the main bench computes K = 4): slowest part (isolated median) + transport + fusion, the transport
being the lockstep breakdown of this teacher's real K = 2 fleet of the same method (JPEG frames on the wire).
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


def _fleet_run_for(teacher: dict[str, Any], method: str) -> dict[str, Any] | None:
    runs = [r for name, r in teacher.get("fleet_runs", {}).items() if name.startswith(f"{method} ") and "error" not in r]
    return runs[0] if runs else None


def fleet_rows(results: dict[str, Any], s: SeedSettings) -> list[dict[str, Any]]:
    rows = []
    for t in results["teachers"]:
        t32 = t["fp32"]
        for b in t["bundles"]:
            run = _fleet_run_for(t, b["method"])
            transport = transport_from_run(run) if run else None
            for precision, m in b["precisions"].items():
                slowest = max(p["median_ms"] for p in m["parts"])
                fusion = m["fusion"]["median_ms"]
                path = slowest + fusion + (transport or 0.0)
                same = t.get(precision)
                largest = max(p["bytes"] for p in m["parts"])
                row = {
                    "label": UNTRAINED_LABEL, "teacher": t["label"], "method": b["method"], "parts": b["parts"],
                    "precision": precision, "budget": b["budget"], "largest_part_params": max(b["part_params"]),
                    "teacher_params": t["params"], "slowest_part_ms": slowest, "fusion_ms": fusion,
                    "transport_ms": transport,
                    "transport_source": (f"measured: {t['label']} {b['method']} K={run['parts']} {run['precision']} "
                                         "real fleet, lockstep breakdown p50" if run else "none (no real fleet run)"),
                    "critical_path_ms": path, "latency_kind": "computed",
                    "compute_speedup_vs_teacher_fp32": t32["median_ms"] / slowest,
                    "speedup_vs_teacher_fp32": t32["median_ms"] / path,
                    "speedup_vs_teacher_same_precision": None if same is None else same["median_ms"] / path,
                    "largest_board_bytes": largest, "all_boards_bytes": sum(p["bytes"] for p in m["parts"]),
                    "teacher_fp32_bytes": t32["bytes"], "size_reduction_largest": t32["bytes"] / largest,
                    "feature_dim": max(b["feature_dims"]), "feature_message_bytes": b["feature_message_bytes"],
                    "feature_packet_bytes": b["feature_packet_bytes"],
                }
                if run and run["parts"] == b["parts"] and run["precision"] == precision:
                    row["measured_e2e_p50_ms"] = run["lockstep"].get("e2e_p50_ms")
                    row["latency_kind"] = "computed (real fleet measured beside it)"
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
    """*Projected* K-board fleets vs the teacher on one such board (slowest part x factor + LAN + fusion x factor)."""
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
                teacher = t[f["here"]]["median_ms"] * f["factor"]
                rows.append({"label": f"projected; {UNTRAINED_LABEL}", "teacher": t["label"], "method": b["method"],
                             "parts": parts, "board": f["board"], "precision_here": f["here"],
                             "factor": f["factor"], "teacher_on_board_ms": teacher, "slowest_part_ms": slowest,
                             "fusion_ms": fusion, "lan_ms": network, "jpeg_codec_ms_x86": codec,
                             "fleet_ms": fleet, "speedup": teacher / fleet})
    return rows


def targets(rows: list[dict[str, Any]], s: SeedSettings) -> list[dict[str, Any]]:
    """The issue's targets, judged on this run's rows."""
    out = []
    for r in rows:
        if r["teacher"].startswith("ViT-B") and r["method"] == "edvit" and r["parts"] == 4 and r["precision"] == "int8":
            v = r["speedup_vs_teacher_fp32"]
            out.append({"target": f"ViT-B/16 K=4 ED-ViT int8 critical-path speedup >= {s.speedup_target:g}x "
                                  f"(aim {s.speedup_aim:g}x)", "value": f"{v:.2f}x", "met": v >= s.speedup_target,
                        "aim_met": v >= s.speedup_aim})
    for r in rows:
        if r["precision"] == "int8" and r["parts"] == 4:
            out.append({"target": f"{r['teacher']} {r['method']} K=4 int8: largest board <= 1/{1 / s.size_target:.0f} "
                                  "of the teacher's fp32 bytes",
                        "value": f"1/{r['size_reduction_largest']:.1f}",
                        "met": r["largest_board_bytes"] <= s.size_target * r["teacher_fp32_bytes"]})
            # The target counts the features (float16 vector); the message adds the protocol's 72-byte header.
            feature_bytes = 2 * r["feature_dim"]
            out.append({"target": f"{r['teacher']} {r['method']} K=4: feature bytes per board per frame <= "
                                  f"{s.feature_target_bytes} B",
                        "value": f"{feature_bytes} B (message with header {r['feature_message_bytes']} B)",
                        "met": feature_bytes <= s.feature_target_bytes})
    return out
