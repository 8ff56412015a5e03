"""`make bench SCALE=seed` = `python -m vitfleet.bench.seed_scale`: the papers' teachers (ViT-B/16, DeiT-S/16, 224² RGB,
random init) through the kit -- import, decompose (DeViT + ED-ViT, K = 2/4/8, derived only), engines (fp32 + int8),
isolated latency, a real K = 2 fleet over MQTT with JPEG frames, the computed K = 4/8 critical path, and a
projected board table. Untrained: latency, size and bytes only -- no accuracy. Writes bench/results/seed.json and
the "Seed scale" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitfleet.bench.seed_settings import UNTRAINED_LABEL, SeedSettings

FLAG_NAMES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> dict[str, bool]:
    """The instruction-set flags that move ONNX Runtime timings (stated beside every timing)."""
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        return {}
    present = set(line.split(":", 1)[1].split())
    return {f: f in present for f in FLAG_NAMES}


def _time_bundle(bundle, image, s: SeedSettings) -> dict[str, Any]:
    from vitfleet.bench.contenders import feature_bytes
    from vitfleet.bench.seed_measure import time_engine
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.engines.runtime.manifest import read_manifest, verified_path

    card = read_bundle(bundle.bundle_dir)
    manifest = read_manifest(bundle.engines_dir)

    def path(role: str, part: int | None, precision: str) -> Path:
        return verified_path(bundle.engines_dir, manifest.lookup(role, part, "onnxruntime", precision))  # type: ignore[arg-type]

    fusion = time_engine(path("fusion", None, "fp32"), None, s)
    precisions = {
        p: {"parts": [time_engine(path("part", i, p), image, s) for i in range(card.num_parts)], "fusion": fusion}
        for p in s.precisions
    }
    message, packet = zip(*(feature_bytes(spec.feature_dim, part=spec.index) for spec in card.parts))
    return {
        "method": bundle.method,
        "parts": bundle.parts,
        "budget": bundle.budget,
        "dir": str(bundle.bundle_dir),
        "engines": str(bundle.engines_dir),
        "bundle_id": card.bundle_id,
        "partition": card.partition,
        "part_params": [p.params for p in card.parts],
        "feature_dims": [p.feature_dim for p in card.parts],
        "part_flops": [p.flops for p in card.parts],
        "feature_message_bytes": max(message),
        "feature_packet_bytes": max(packet),
        "seconds": bundle.seconds,
        "precisions": precisions,
    }


def _real_fleets(t_label: str, bundles: list, data: Path, s: SeedSettings, log: Callable[[str], None]) -> dict:
    from vitfleet.bench.fleet_run import run_fleet
    from vitfleet.bench.seed_measure import camera_uri

    runs: dict[str, Any] = {}
    for b in (b for b in bundles if b.parts == s.real_fleet_parts):
        for precision in s.real_fleet_precisions:
            name = f"{b.method} K={b.parts} {precision}"
            if precision != "int8":  # the engines folder's manifest says int8 (what agents load)
                runs[name] = {"error": "only int8 engine folders are built; agents load the manifest's precision"}
                continue
            log(
                f"{t_label} {name}: real fleet over MQTT, JPEG frames ({s.lockstep_frames} lockstep + "
                f"{s.pipelined_frames} pipelined)"
            )
            try:
                runs[name] = run_fleet(
                    b.engines_dir,
                    s.runs / "fleet-run" / f"{t_label}-{name}".replace(" ", "_").replace("/", "-"),
                    s.lockstep_frames,
                    s.pipelined_frames,
                    s.max_in_flight,
                    camera_uri=camera_uri(data, s),
                    encoding="jpeg",
                    lockstep_fps=s.lockstep_fps,
                )
            except Exception as exc:  # noqa: BLE001 - the report says which fleet failed and why, and goes on
                runs[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return runs


def run(s: SeedSettings, log: Callable[[str], None] = print, progress=None) -> dict[str, Any]:
    from vitfleet.bench.machine import machine_facts
    from vitfleet.bench.seed_data import calibration_images, ensure_image_folder, import_teacher
    from vitfleet.bench.seed_figures import board_factors, fleet_rows, measured_rows, projection, targets
    from vitfleet.bench.seed_measure import jpeg_codec, replay_frames, time_engine
    from vitfleet.bench.seed_prepare import prepare_bundle, prepare_reference, prepare_teacher_onnx
    from vitfleet.decompose.teacher import read_card

    t_start = time.monotonic()
    started = dt.datetime.now(dt.UTC)
    facts = {**machine_facts(), "cpu_flags": cpu_flags()}
    phases: dict[str, float] = {}
    data = ensure_image_folder(s)
    frames = replay_frames(data, s)
    log("JPEG codec and frame bytes")
    jpeg = jpeg_codec(frames, s)
    from vitfleet.preprocessing import Preprocessing

    pre = Preprocessing(size=s.image_size, channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    calibration = calibration_images(data, s, pre)
    image = calibration[:1]
    log(f"reference {s.reference.label}: export + time (for the board factors)")
    ref = prepare_reference(s, calibration)
    reference = {
        "label": ref.label,
        "timm_name": s.reference.timm_name,
        "params": ref.params,
        **{p: time_engine(f, image, s) for p, f in ref.files.items()},
    }
    teachers = []
    for t in s.teachers:
        t0 = time.monotonic()
        log(f"{t.label}: import ({t.timm_name}, random init) through `vitfleet teacher --checkpoint`")
        imported = import_teacher(s, t, data)
        card = read_card(imported.folder)
        t_cal = calibration_images(data, s, card.preprocessing)  # the mean/std the import chose
        single = prepare_teacher_onnx(s, imported.folder, t_cal)
        entry: dict[str, Any] = {
            "label": t.label,
            "timm_name": t.timm_name,
            "params": single.params,
            "arch": card.arch.model_dump(),
            "imported_via": imported.via,
            "checkpoint_bytes": imported.checkpoint_bytes,
            "dir": str(imported.folder),
        }
        log(f"{t.label}: teacher latency (fp32{', int8' if 'int8' in single.files else ''})")
        for p, f in single.files.items():
            entry[p] = time_engine(f, t_cal[:1], s)
        phases[f"{t.label} import+teacher"] = round(time.monotonic() - t0, 1)
        bundles = []
        for k in s.parts:
            for method in s.methods:
                t0 = time.monotonic()
                log(f"{t.label}: {method} K={k}: decompose (0 epochs: derive only) + engines (fp32, int8)")
                bundles.append(prepare_bundle(s, t.label, imported.folder, method, k, progress))
                phases[f"{t.label} {method} K={k} prepare"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        log(f"{t.label}: isolated latency of every part and fusion engine")
        entry["bundles"] = [_time_bundle(b, t_cal[:1], s) for b in bundles]
        phases[f"{t.label} isolated"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        entry["fleet_runs"] = _real_fleets(t.label, bundles, data, s, log)
        phases[f"{t.label} real fleets"] = round(time.monotonic() - t0, 1)
        if s.lab_fleet_parts and (s.lab_teachers is None or t.label in s.lab_teachers) and "int8" in single.files:
            from vitfleet.bench.seed_lab import lab_fleets
            from vitfleet.bench.seed_measure import camera_uri

            t0 = time.monotonic()
            entry["lab"] = lab_fleets(
                t.label,
                imported.folder,
                single.files["int8"],
                entry["int8"]["median_ms"],
                entry["bundles"],
                bundles,
                camera_uri(data, s),
                s,
                log,
                t_cal[:1],
            )
            phases[f"{t.label} lab fleets"] = round(time.monotonic() - t0, 1)
        teachers.append(entry)
    results: dict[str, Any] = {
        "label": UNTRAINED_LABEL,
        "command": s.command,
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": facts,
        "settings": json.loads(s.model_dump_json()),
        "data": str(data),
        "jpeg": jpeg,
        "reference": reference,
        "teachers": teachers,
    }
    results["rows"] = fleet_rows(results, s)
    results["measured"] = measured_rows(results)
    results["board_factors"] = board_factors(reference)
    results["projection"] = {str(k): projection(results, s, k) for k in s.parts}
    results["targets"] = targets(results["rows"], results["measured"], s)
    results["phases_s"] = phases
    results["duration_s"] = round(time.monotonic() - t_start, 1)
    return results


def publish(results: dict[str, Any], s: SeedSettings) -> None:
    from vitfleet.bench.report import write_section
    from vitfleet.bench.seed_report import BEGIN, END, ensure_markers, render

    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    ensure_markers(s.report)
    write_section(s.report, render(results, s), BEGIN, END)
    if s.readme is not None:
        from vitfleet.bench.seed_readme import write_readme_lines

        write_readme_lines(s.readme, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitfleet.bench.seed_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/seed"), help="work dir (every step cached here)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/seed.json"))
    parser.add_argument("--report", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--parts", default="2,4,8", help="fleet sizes K, comma-separated")
    parser.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="METHOD=FRACTION",
        help="part budget as a fraction of the teacher's params, e.g. edvit=0.0833 (default: the recipes' "
        "part_budget, decompose/recipes.py)",
    )
    parser.add_argument("--teachers", default=None, help="timm names, comma-separated (default: ViT-B/16, DeiT-S/16)")
    parser.add_argument(
        "--lab-parts", default=None, help="K of the measured lab fleets, comma-separated (default 2,4,8; empty: none)"
    )
    parser.add_argument(
        "--lab-teachers", default=None, help="teacher labels with lab fleets, comma-separated (default: all)"
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite the report from --out only")
    args = parser.parse_args(argv)
    given: dict[str, Any] = {
        "runs": args.runs,
        "out": args.out,
        "report": args.report,
        "parts": [int(k) for k in args.parts.split(",")],
        "part_budget": {m: float(v) for m, v in (b.split("=", 1) for b in args.budget)},
        "command": "python -m vitfleet.bench.seed_scale "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
    }
    if args.lab_parts is not None:
        given["lab_fleet_parts"] = [int(k) for k in args.lab_parts.split(",") if k]
    if args.lab_teachers:
        given["lab_teachers"] = args.lab_teachers.split(",")
    s = SeedSettings.model_validate(given)
    if args.teachers:
        labels = {t.timm_name: t for t in s.teachers}
        s.teachers = [labels.get(n) or type(s.reference)(timm_name=n, label=n) for n in args.teachers.split(",")]
    if args.render_only:
        publish(json.loads(s.out.read_text()), s)
        return 0
    t0 = time.monotonic()
    results = run(s, log=lambda m: print(f"[seed {time.monotonic() - t0:7.1f} s] {m}", flush=True))
    publish(results, s)
    print(f"seed bench done in {results['duration_s'] / 60:.1f} min: {s.out}, section in {s.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
