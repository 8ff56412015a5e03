"""`vitfleet bench` end to end: inputs -> isolated latency/energy -> accuracy -> real fleet runs -> figures,
ratios, goals -> results JSON, plots and the report section."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.bench.accuracy import classifier_top1, fleet_top1
from vitfleet.bench.compact import KD_TEMPERATURE, ensure_compact
from vitfleet.bench.contenders import Contender, feature_bytes, ratios, strongest_compacts, transport_from_run
from vitfleet.bench.goals import PAPERS, evaluate_goals, goals_json
from vitfleet.bench.isolation import measure, pinned
from vitfleet.bench.machine import machine_facts
from vitfleet.bench.preparation import FleetInputs, ensure_teacher, prepare_fleets
from vitfleet.bench.settings import BenchSettings

REFERENCE_PARTS = 4


def _entry_path(engines_dir: Path, role: str, part: int | None, precision: str | None) -> tuple[Path, int]:
    from vitfleet.engines.runtime.manifest import read_manifest, verified_path

    entry = read_manifest(engines_dir).lookup(role, part, "onnxruntime", precision)  # type: ignore[arg-type]
    return verified_path(engines_dir, entry), entry.size


def _test_images(teacher_dir: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    from vitfleet.datasets import load_dataset
    from vitfleet.decompose.teacher import read_card

    card = read_card(teacher_dir)
    pre = card.preprocessing
    data = load_dataset(card.dataset, "test", pre=pre).head(limit)
    return np.ascontiguousarray(pre.normalize(data.images), np.float32), data.labels


class Bench:
    def __init__(self, settings: BenchSettings, progress=None, log=print) -> None:
        self.s = settings
        self.progress = progress
        self.log = log
        self.sampler = None

    def _isolated(self, path: Path, image: np.ndarray):
        return measure(path, self.s.latency_runs, self.s.latency_warmup, self.s.energy_seconds, self.sampler, image)

    def _single(
        self, name: str, kind: str, precision: str, path: Path, size: int, params: int, x: np.ndarray, y: np.ndarray
    ) -> Contender:
        with pinned(self.s.core):
            iso = self._isolated(path, x[:1])
        c = Contender(
            name=name,
            kind=kind,
            precision=precision,
            params_per_board=[params],
            bytes_per_board=[size],
            part_median_ms=[iso.median_ms],
            part_p99_ms=[iso.p99_ms],
            latency_runs=iso.runs,
            transport_source="none: camera and model on one board",
            throughput_source="computed: 1000 / isolated median (one frame at a time, one thread)",
            energy_mj_per_frame=None if iso.joules_per_frame is None else 1e3 * iso.joules_per_frame,
        )
        c.throughput_fps = 1000.0 / iso.median_ms
        c.top1 = classifier_top1(path, x, y)
        return c

    def _fleet(self, f: FleetInputs, precision: str, x: np.ndarray, y: np.ndarray) -> Contender:
        from vitfleet.decompose.bundle import read_bundle

        card = read_bundle(f.bundle_dir)
        engines = f.engines[precision]
        files = [_entry_path(engines, "part", i, precision) for i in range(card.num_parts)]
        fusion_path, fusion_size = _entry_path(engines, "fusion", None, None)
        c = Contender(
            name=f.label(precision, mark=not self.s.quick),
            kind="fleet",
            precision=precision,
            method=f.method,
            parts=f.parts,
            params_per_board=[p.params for p in card.parts],
            bytes_per_board=[size for _, size in files],
            fusion_bytes=fusion_size,
        )
        energies = []
        with pinned(self.s.core):
            for path, _ in files:
                iso = self._isolated(path, x[:1])
                c.part_median_ms.append(iso.median_ms)
                c.part_p99_ms.append(iso.p99_ms)
                c.latency_runs = iso.runs
                energies.append(iso.joules_per_frame)
            fusion_iso = self._isolated(fusion_path, None)
        energies.append(fusion_iso.joules_per_frame)
        c.fusion_median_ms, c.fusion_p99_ms = fusion_iso.median_ms, fusion_iso.p99_ms
        if all(e is not None for e in energies):
            c.energy_mj_per_frame = 1e3 * sum(energies)  # type: ignore[arg-type]
        payload, packet = zip(*(feature_bytes(p.feature_dim, part=p.index) for p in card.parts))
        c.feature_payload_bytes, c.feature_packet_bytes = max(payload), max(packet)
        acc = fleet_top1([p for p, _ in files], fusion_path, x, y)
        c.top1, c.top1_without_part = acc.top1, acc.without_part
        return c

    def run(self) -> dict[str, Any]:
        from vitfleet.power.detect import detect_meter
        from vitfleet.power.sampler import PowerSampler

        t_start = time.monotonic()
        started = dt.datetime.now(dt.UTC)
        facts = machine_facts()
        self.log("preparing teacher, bundles and engines (reused when present)")
        teacher_dir = ensure_teacher(self.s, self.progress)
        fleets = prepare_fleets(self.s, teacher_dir, self.progress)
        from vitfleet.decompose.bundle import read_bundle
        from vitfleet.decompose.teacher import read_card

        tcard = read_card(teacher_dir)
        # The reference fleet (compact budget, goals) is K=4, the papers' setting, when it is measured.
        ref_k = REFERENCE_PARTS if any(f.parts == REFERENCE_PARTS for f in fleets) else max(f.parts for f in fleets)
        ref = max((f for f in fleets if f.parts == ref_k), key=lambda f: f.method == "devit")
        budget = max(p.params for p in read_bundle(ref.bundle_dir).parts)
        self.log(f"compact single model at <= {budget:,} params (largest part of {ref.method} K={ref.parts})")
        compact = ensure_compact(self.s, teacher_dir, budget, self.progress)
        distilled = ensure_compact(self.s, teacher_dir, budget, self.progress, distilled=True)
        t_prepared = time.monotonic()

        x, y = _test_images(teacher_dir, self.s.test_images)
        meter = detect_meter()
        self.sampler = PowerSampler(meter, rate_hz=10.0).start()
        contenders: list[Contender] = []
        try:
            self.log("teacher and compact model: isolated latency, energy, accuracy")
            first = fleets[0].engines.get("fp32") or next(iter(fleets[0].engines.values()))
            tpath, tsize = _entry_path(first, "teacher", None, "fp32")
            contenders.append(
                self._single(
                    "teacher fp32",
                    "teacher",
                    "fp32",
                    tpath,
                    tsize,
                    int(tcard.metrics.get("params") or read_bundle(ref.bundle_dir).teacher.params),
                    x,
                    y,
                )
            )
            from vitfleet.decompose.teacher import read_card as card_of

            ccard = card_of(Path(compact["dir"]))
            for label, made in (("compact", compact), ("compact distilled", distilled)):
                for precision in self.s.precisions:
                    path = Path(made[precision])
                    contenders.append(
                        self._single(
                            f"{label} {precision}",
                            "compact",
                            precision,
                            path,
                            path.stat().st_size,
                            int(card_of(Path(made["dir"])).metrics["params"]),
                            x,
                            y,
                        )
                    )
            for f in fleets:
                for precision in self.s.precisions:
                    self.log(f"{f.method} K={f.parts} {precision}: isolated latency, energy, accuracy")
                    contenders.append(self._fleet(f, precision, x, y))
        finally:
            self.sampler.stop()
        t_isolated = time.monotonic()

        runs: dict[str, dict[str, Any]] = {}
        from vitfleet.bench.fleet_run import run_fleet

        for f in fleets:
            if f.parts > self.s.real_fleet_max_parts:
                continue
            for precision in self.s.precisions:
                name = f"{f.method} K={f.parts} {precision}"
                self.log(
                    f"{name}: real fleet over MQTT ({self.s.lockstep_frames} lockstep + "
                    f"{self.s.throughput_frames} pipelined frames)"
                )
                runs[name] = run_fleet(
                    f.engines[precision],
                    self.s.runs / "bench" / "fleet-run" / name.replace(" ", "_"),
                    self.s.lockstep_frames,
                    self.s.throughput_frames,
                    self.s.max_in_flight,
                )
        self._apply_runs(contenders, runs)
        t_runs = time.monotonic()

        teacher = contenders[0]
        compacts = strongest_compacts(contenders)  # per precision, the more accurate of scratch and distilled
        table = []
        for c in contenders:
            table.append({"name": c.name, **ratios(c, teacher, compacts.get(c.precision))})
        top_k = ref_k
        goals = {}
        for c in contenders:
            if c.kind == "fleet" and c.parts == top_k and c.precision == "int8":
                goals[c.name] = goals_json(evaluate_goals(c, teacher, compacts.get("int8")))
        return {
            "command": self.s.command,
            "quick": self.s.quick,
            "started_utc": started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t_start, 1),
            "phases_s": {
                "prepare": round(t_prepared - t_start, 1),
                "isolated_and_accuracy": round(t_isolated - t_prepared, 1),
                "real_fleets": round(t_runs - t_isolated, 1),
            },
            "machine": facts,
            "settings": json.loads(self.s.model_dump_json()),
            "power_meter": {"source": meter.source, "estimated": bool(meter.estimated), "detail": meter.detail},
            "teacher": {"dir": str(teacher_dir), "arch": tcard.arch.model_dump(), "source": tcard.source},
            "bundles": [
                {
                    "method": f.method,
                    "parts": f.parts,
                    "dir": str(f.bundle_dir),
                    "created_by_bench": f.created_here,
                    "recipe_deviations": list(f.deviations),
                    "partition": read_bundle(f.bundle_dir).partition,
                }
                for f in fleets
            ],
            "compact": {
                "dir": str(compact["dir"]),
                "distilled_dir": str(distilled["dir"]),
                "budget_params": budget,
                "arch": ccard.arch.model_dump(),
                "epochs": self.s.compact_epochs,
                "kd_temperature": KD_TEMPERATURE,
                "strongest": {p: c.name for p, c in compacts.items()},
            },
            "test_images": int(len(y)),
            "contenders": [c.to_json() for c in contenders],
            "ratios": table,
            "goals": goals,
            "papers": PAPERS,
            "fleet_runs": runs,
            "engines": {f"{f.method} K={f.parts} {p}": str(d) for f in fleets for p, d in f.engines.items()},
            "feature_dims": {
                f"{f.method} K={f.parts} {p}": max(s.feature_dim for s in read_bundle(f.bundle_dir).parts)
                for f in fleets
                for p in f.engines
            },
        }

    @staticmethod
    def _apply_runs(contenders: list[Contender], runs: dict[str, dict[str, Any]]) -> None:
        transports = {name: transport_from_run(r) for name, r in runs.items()}
        for c in contenders:
            if c.kind != "fleet":
                continue
            run = runs.get(c.name)
            if run is not None:
                c.fleet_run = run
                c.transport_ms = transports[c.name]
                c.transport_source = "measured: this fleet's real run (lockstep breakdown medians)"
                lock = run["lockstep"]
                c.measured_e2e_p50_ms, c.measured_e2e_p99_ms = lock.get("e2e_p50_ms"), lock.get("e2e_p99_ms")
                c.measured_accuracy = lock.get("accuracy")
                c.hop_p50_ms, c.hop_p99_ms = run.get("hop_p50_ms"), run.get("hop_p99_ms")
                c.throughput_fps = run.get("throughput_fps")
                c.throughput_source = f"measured: real fleet, {run['max_in_flight']} frames in flight"
                continue
            # Computed: the transport of the real K=2 run of the same method and precision (else the mean).
            same = [n for n in runs if n.startswith(f"{c.method} ") and n.endswith(f" {c.precision}")]
            source = same or list(runs)
            if source:
                c.transport_ms = float(np.mean([transports[n] for n in source]))
                c.transport_source = f"computed: transport measured in {', '.join(source)}"
                c.hop_p50_ms = float(np.mean([runs[n]["hop_p50_ms"] or 0 for n in source]))
                c.hop_p99_ms = float(np.mean([runs[n]["hop_p99_ms"] or 0 for n in source]))
            else:
                c.transport_source = "none measured (no real fleet run in this benchmark)"
            c.throughput_fps = 1000.0 / max(c.slowest_part_ms, c.fusion_median_ms)
            c.throughput_source = "computed: 1000 / slowest board's isolated median (one board per part)"
