"""The "Seed scale" section of docs/benchmarks.md, rendered from bench/results/seed.json (between the seed markers;
the markers are appended at the end of the file the first time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitfleet.bench.report import _table
from vitfleet.bench.seed_report_lab import measured_section
from vitfleet.bench.seed_settings import SeedSettings

BEGIN, END = "<!-- seed:begin -->", "<!-- seed:end -->"


def ensure_markers(path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    if BEGIN not in text and END not in text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n")


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.1f}")


def _b(x: int | float | None) -> str:
    return "-" if x is None else f"{int(x):,}"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _reused(results: dict[str, Any]) -> str:
    bundles = [b for t in results["teachers"] for b in t["bundles"]]
    reused = sum(1 for b in bundles if not any(b["seconds"].values()))
    if not reused:
        return ""
    rest = "" if reused == len(bundles) else "; the rest decomposed and built by this run"
    return f" ({reused} of {len(bundles)} bundles and their engines reused from the cache under the runs folder{rest})"


def cpu_tag(results: dict[str, Any]) -> str:
    """The short CPU statement repeated beside every timed table."""
    flags = results["machine"].get("cpu_flags", {})
    amx = "AMX" if flags.get("amx_int8") or flags.get("amx_bf16") else "no AMX"
    vnni = "AVX512-VNNI" if flags.get("avx512_vnni") else "no AVX512-VNNI"
    base = "AVX-512" if flags.get("avx512f") else "no AVX-512"
    return f"timed on {results['machine']['cpu']} ({base}, {vnni}, {amx}), 1 ORT thread, pinned"


def cpu_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    flags = ", ".join(f for f, on in m.get("cpu_flags", {}).items() if on) or "unknown"
    absent = ", ".join(f for f, on in m.get("cpu_flags", {}).items() if not on)
    return (
        f"{m['cpu']}, {m['cores_usable']} cores, flags {flags}"
        + (f" (absent: {absent})" if absent else "")
        + f"; load average at start {m['load_avg_at_start']}"
    )


def _teacher_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for t in [*results["teachers"], {**results["reference"], "imported_via": "reference only (board factors)"}]:
        rows.append(
            [
                t["label"],
                _b(t["params"]),
                _b(t["fp32"]["bytes"]),
                _ms(t["fp32"]["median_ms"]),
                _b(t.get("int8", {}).get("bytes")),
                _ms(t.get("int8", {}).get("median_ms")),
                str(t["fp32"]["runs"]),
                t["imported_via"],
            ]
        )
    return _table(
        [
            "model (random init, 224² RGB)",
            "params",
            "fp32 bytes",
            "fp32 median ms",
            "int8 bytes",
            "int8 median ms",
            "runs",
            "imported via",
        ],
        rows,
    )


def _source(r: dict[str, Any]) -> str:
    src = r["transport_source"]
    return "lab fleet, this K" if "lab fleet" in src else "unquotaed fleet, this K" if "unquotaed" in src else "none"


def _fleet_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for r in results["rows"]:
        rows.append(
            [
                r["teacher"],
                r["method"],
                str(r["parts"]),
                r["precision"],
                f"{r['budget']:.4g}",
                _b(r["largest_part_params"]),
                _ms(r["slowest_part_ms"]),
                _ms(r["fusion_ms"]),
                _ms(r["transport_ms"]),
                _source(r),
                _ms(r["critical_path_ms"]),
                _x(r.get("compute_speedup_same_precision")),
                f"**{_x(r['speedup_vs_teacher_same_precision'])}**",
                _x(r["speedup_vs_teacher_fp32"]),
                _b(r["largest_board_bytes"]),
                f"1/{r['size_reduction_largest']:.1f}",
                f"{2 * r['feature_dim']} B ({r['feature_message_bytes']} B with header)",
                _ms(r.get("measured_e2e_p50_ms")),
                r["label"],
            ]
        )
    return _table(
        [
            "teacher",
            "method",
            "K",
            "precision",
            "part budget (x teacher params)",
            "largest part params",
            "slowest part ms",
            "fusion ms",
            "transport ms",
            "transport measured in",
            "critical path ms (computed)",
            "compute speedup (teacher / slowest part, same precision)",
            "**critical-path speedup, teacher at the same precision**",
            "vs fp32 teacher (int8 rows: not like for like)",
            "largest board bytes",
            "largest board / teacher fp32 bytes",
            "feature bytes per board per frame",
            "unquotaed K=2 fleet e2e p50 ms",
            "label",
        ],
        rows,
    )


def _real_fleet_table(results: dict[str, Any]) -> list[str]:
    rows = []
    keys: list[str] = []
    for t in results["teachers"]:
        for run in t["fleet_runs"].values():
            keys += [k for k in (run.get("lockstep", {}).get("breakdown_p50_ms") or {}) if k not in keys]
    for t in results["teachers"]:
        for name, run in t["fleet_runs"].items():
            if "error" in run:
                rows.append([t["label"], name, f"failed: {run['error']}"] + ["-"] * (6 + len(keys)))
                continue
            lock = run["lockstep"]
            b = lock.get("breakdown_p50_ms") or {}
            rss = ", ".join(f"{n} {v} MiB" for n, v in (run.get("peak_rss_mb") or {}).items())
            rows.append(
                [
                    t["label"],
                    name,
                    f"{lock.get('predictions')}/{lock.get('frames_sent')}",
                    _ms(lock.get("e2e_p50_ms")),
                    _ms(lock.get("e2e_p99_ms")),
                    *[_ms(b.get(k)) for k in keys],
                    _ms(run.get("fusion_p50_ms")),
                    f"{run.get('throughput_fps') or '-'}",
                    rss,
                ]
            )
    return _table(
        [
            "teacher",
            "fleet (JPEG frames, unquotaed)",
            "answered/sent (lockstep)",
            "e2e p50 ms",
            "e2e p99 ms",
            *[f"{k.removesuffix('_ms').replace('_', ' ')} p50 ms" for k in keys],
            "aggregator fusion p50 ms",
            "pipelined frames/s",
            "peak RSS (VmHWM)",
        ],
        rows,
    )


def _projection_table(results: dict[str, Any], k: str) -> list[str]:
    rows = []
    for r in results["projection"].get(k, []):
        verdict = f"**{_x(r['speedup'])}**" if r["pays"] else f"**{_x(r['speedup'])} — slower than one board**"
        rows.append(
            [
                r["teacher"],
                r["method"],
                r["board"],
                f"{r['factor']:.3g} ({r['precision_here']} here)",
                _ms(r["teacher_on_board_ms"]),
                r["teacher_source"],
                _ms(r["slowest_part_ms"]),
                _ms(r["fusion_ms"]),
                _ms(r["lan_ms"]),
                _ms(r["jpeg_codec_ms_x86"]),
                _ms(r["fleet_ms"]),
                verdict,
            ]
        )
    return _table(
        [
            "teacher",
            "method",
            "board",
            "factor",
            "teacher on one board ms",
            "teacher figure",
            "slowest part ms (estimate)",
            "fusion ms (estimate)",
            "LAN (3 hops) ms (assumed)",
            "JPEG enc+dec ms (x86, unscaled)",
            f"K={k} fleet ms (estimate)",
            "estimated speedup",
        ],
        rows,
    )


def render(results: dict[str, Any], s: SeedSettings) -> str:
    j = results["jpeg"]
    cpu = cpu_line(results)
    budgets = sorted({(r["method"], r["budget"]) for r in results["rows"]})
    lines = [
        "## Seed scale (issue 14) — the papers' model sizes through the kit",
        "",
        f"**{results['label']}.** Generated by `{results['command']}` (`make bench SCALE=seed`) on "
        f"{results['started_utc']} in {results['duration_s'] / 60:.1f} min{_reused(results)}. Raw figures: "
        "`bench/results/seed.json`.",
        "",
        f"**CPU (every timing below)**: {cpu}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in results["machine"]["versions"].items())
        + ".",
        "",
        "What ran: random-init `timm.create_model(<name>, pretrained=False, num_classes="
        f"{results['settings']['classes']})` saved as .safetensors and imported with `vitfleet teacher --checkpoint` "
        f"(a synthetic {results['settings']['image_size']}² RGB ImageFolder, {results['settings']['classes']} classes, "
        f"{results['settings']['train_per_class']} train / {results['settings']['test_per_class']} test images per "
        "class); `decompose_teacher` with 0 part epochs and 0 fusion epochs (derive only: class-wise torch-pruning, "
        f"Taylor importance on {results['settings']['importance_batches']} batch of "
        f"{results['settings']['importance_batch']} subset images, untrained fusion head); `build_engines` "
        f"(`vitfleet engines build --precision int8`: fp32 ONNX + symmetric QDQ int8, "
        f"{results['settings']['calib_images']} calibration images). Part budgets: "
        + ", ".join(f"{m} {b:.4g} of the teacher's params per part" for m, b in budgets)
        + " ("
        + (
            "given with `--budget`"
            if results["settings"].get("part_budget")
            else "the recipes' defaults, `part_budget` in decompose/recipes.py, read by the run, not hard-coded"
        )
        + "). Isolated latency: ONNX Runtime, 1 intra-op thread, batch 1, this process pinned to "
        f"one core, {results['settings']['latency_warmup']} warm-up runs then as many runs as fit "
        f"{results['settings']['latency_seconds']} s (at least {results['settings']['latency_min_runs']}).",
        "",
        "### Teachers and the reference model" + f" — {cpu_tag(results)}",
        "",
        *_teacher_table(results),
        "",
        "### Fleets: critical path per K, method and precision" + f" — {cpu_tag(results)}",
        "",
        "Critical path = slowest part + transport + fusion (computed from isolated timings on a whole idle core); "
        "transport is the lockstep breakdown (frame hop incl. JPEG encode, agent queue incl. JPEG decode, feature hop, "
        "aggregator wait, prediction hop) of a real fleet of the *same* K and method: the lab fleet of that K (LAN "
        "profile, agents at their quota, so the agent-side JPEG decode is slowed by it too), else an unquotaed fleet "
        "of that K; a row with no such fleet has no critical path. **Headline speedup: the teacher at the row's own "
        "precision** / critical path (int8 parts vs the int8 teacher); dividing the fp32 teacher by int8 parts is "
        "shown beside it, labelled, because it mixes the quantization gain into the decomposition gain.",
        "",
        *_fleet_table(results),
        "",
        *measured_section(results),
        "### Unquotaed real K = 2 fleets over MQTT (JPEG frames on the wire)" + f" — {cpu_tag(results)}",
        "",
        "Private mosquitto, one agent process per part pinned to its own core with one inference thread, aggregator, "
        f"camera node and broker on the same 2 cores; {results['settings']['lockstep_frames']} frames in lockstep "
        f"(latency; the camera paced at {results['settings'].get('lockstep_fps', 0):g} fps, slower than the fleet "
        "answers, so no frame waits for the previous one's admission credit after its capture stamp), then "
        f"{results['settings']['pipelined_frames']} with {results['settings']['max_in_flight']} in "
        "flight (frames/s). Breakdown: p50 of each stage on the slowest part's path (camera node summary).",
        "",
        *_real_fleet_table(results),
        "",
        f"JPEG codec measured separately (cv2, quality {j['quality']}, {j['shape'][0]}×{j['shape'][1]}×{j['shape'][2]}, "
        f"one thread, pinned): encode p50 **{_ms(j['encode_p50_ms'])} ms**, decode p50 **{_ms(j['decode_p50_ms'])} ms**. "
        f"Frame message on the wire (72-byte header + JPEG): mean {_b(j['frame_message_bytes_mean'])} B, max "
        f"{_b(j['frame_message_bytes_max'])} B (raw uint8 would be {_b(j['raw_frame_message_bytes'])} B); the "
        "images are synthetic smooth colour fields, photographs compress differently.",
        "",
        "### Targets (issues 14 and 31)",
        "",
        *_table(
            ["target", "value", "met"],
            [
                [
                    t["target"],
                    t["value"],
                    "**not measured**" if t["met"] is None else "**met**" if t["met"] else "**not met**",
                ]
                for t in results["targets"]
            ],
        ),
        "",
    ]
    lines += _projection_section(results, s)
    return "\n".join(lines) + "\n"


def _projection_section(results: dict[str, Any], s: SeedSettings) -> list[str]:
    f = results["board_factors"]
    k = "4" if "4" in results["projection"] else next(iter(results["projection"]), None)
    if k is None:
        return []
    ref = results["reference"]
    return [
        f"### Board projection (*estimates*, not measured) — K = {k}",
        "",
        "**Every figure in this table is an estimate** except a teacher figure marked published. Each engine's time "
        "measured here × a per-board factor. No `vitfleet deploy profile` results exist for these "
        "boards, so the factor comes from published figures: factor = published ms of ViT-Tiny/16 at 224² on the "
        f"board / {ref['label']} (random init, measured in this run with the same ONNX Runtime settings) here. "
        + "; ".join(
            f"{b['board']}: {b['published_ms']} ms {b['runtime']} / {_ms(b['here_ms'])} ms {b['here']} here = "
            f"×{b['factor']:.3g}"
            for b in f
        )
        + f" (published: {f[0]['source']}). Pi rows scale the int8 engines, the Orin Nano row the fp32 engines (ONNX "
        "Runtime has no fp16/TensorRT path here; a GPU does not scale like a CPU core, so that row is the roughest). "
        f"**LAN assumption** (not measured): each hop = message bytes at {s.lan_mbit_s:g} Mbit/s + {s.lan_hop_ms:g} ms "
        "(switch, TCP stacks, broker); three hops — JPEG frame camera → agent, features agent → aggregator, "
        "prediction aggregator → camera (counted as the fixed part only). JPEG encode + decode are added at their "
        "x86 timing (a lower bound on a Pi). The teacher on one board has its camera on the board: no network, no "
        "JPEG. **The teacher's own published time on the board is used wherever one exists** (column \"teacher "
        'figure"); otherwise its time here × the factor, an estimate.',
        "",
        *_projection_table(results, k),
        "",
        *_does_not_pay(results, k),
    ]


def _does_not_pay(results: dict[str, Any], k: str) -> list[str]:
    slow = [r for r in results["projection"].get(k, []) if not r["pays"]]
    if not slow:
        return []
    lines = ["Where decomposition does not pay:"]
    for r in slow:
        lines.append(
            f"- {r['teacher']} {r['method']} on {r['board']}s: the K = {k} fleet (estimate "
            f"{_ms(r['fleet_ms'])} ms) is **slower than one {r['board']} running the whole {r['teacher']}** "
            f"({_ms(r['teacher_on_board_ms'])} ms, {r['teacher_source'].split(':')[0]}), "
            f"{_x(r['speedup'])}. On a GPU board that runs the whole model in a few ms, the network and the "
            "JPEG codec alone cost more than the compute a split saves: decomposing pays there only when "
            "the model does not fit the board's memory or the board is shared with other work."
        )
    return lines + [""]
