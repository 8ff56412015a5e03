"""`vitfleet bench loadgen`: MLPerf LoadGen drives a real local fleet through its camera path.

    vitfleet bench loadgen --scenario singlestream|multistream|offline [--mode performance|accuracy]
                           [--engines DIR] [--bundle DIR] [--count N] [--json]

A private mosquitto on a free loopback port, the aggregator and one agent per part as real `vitfleet` processes
(fleet/local_fleet.py, as `vitfleet demo` boots them), real ONNX Runtime engines (the demo bundle's int8 engines
unless --engines/--bundle say otherwise), and LoadGen's SUT in this process (bench/loadgen_sut.py): every sample
is a camera frame, complete when the fleet's prediction for it comes back. The query sample library is the
bundle's own test split (the `dataset://` replay the demo uses), the first --count images of it.

Scenarios (MLPerf edge): SingleStream reports the 90th percentile latency, MultiStream the 99th percentile
per-query latency (--samples-per-query, 8 by default), Offline samples per second. Runs are kept short by
default (min duration 10 s, see DEFAULTS); MLPerf's own minimums (600 s, 1,024 / 662 / 24,576 queries) are
for submissions, not for a bench on a shared 2-core machine. Accuracy mode sends every image of the library once
and scores LoadGen's accuracy log against the labels, next to the fp32 reference: the same bundle's fp32 ONNX
engines (kept in every engines folder as the source of its int8/fp16 files) run offline on the same images.
MLPerf's edge rule: at least 99 % of the fp32 accuracy.

Written: the report JSON (bench/results/loadgen-<scenario>[-accuracy].json or --out) and LoadGen's own logs
(mlperf_log_summary.txt, mlperf_log_detail.txt, mlperf_log_accuracy.json) in bench/results/loadgen/<name>/, where
<name> is the report's file name without `loadgen-` and `.json`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.bench.loadgen_settings import DEFAULTS, LOADGEN_PIN, MODES, SCENARIOS, LoadgenInputError, LoadgenSettings


def check_options(scenario: str | None, mode: str) -> None:
    """The choices as one sentence each (typer's own choice error is a multi-line box)."""
    if scenario is None:
        raise LoadgenInputError("no scenario given; pass --scenario singlestream, multistream or offline")
    if scenario not in SCENARIOS:
        raise LoadgenInputError(f"unknown scenario {scenario!r}; use --scenario singlestream, multistream or offline")
    if mode not in MODES:
        raise LoadgenInputError(f"unknown mode {mode!r}; use --mode performance or accuracy")


def _require_loadgen() -> Any:
    try:
        import mlperf_loadgen
    except ImportError:
        raise LoadgenInputError(
            f"MLPerf LoadGen is not installed; run `pip install '{LOADGEN_PIN}'` (or "
            "`pip install -e '.[dev]'`) in this venv"
        ) from None
    return mlperf_loadgen


def resolve_engines(s: LoadgenSettings) -> Path:
    """The engines folder: --engines, else int8 engines built (once, cached) from --bundle or the demo bundle."""
    from vitfleet.engines.runtime.manifest import MANIFEST_NAME

    for flag, path in (("--engines", s.engines), ("--bundle", s.bundle)):
        if path is not None and not path.is_dir():
            what = "engines folder (with manifest.json)" if flag == "--engines" else "bundle folder"
            raise LoadgenInputError(f"{flag} {path} is not a folder; pass an existing {what}")
    if s.engines is not None and not (s.engines / MANIFEST_NAME).exists():
        raise LoadgenInputError(
            f"{s.engines} holds no {MANIFEST_NAME}; pass an engines folder made by "
            "`vitfleet engines build` (e.g. runs/engines/cpu)"
        )
    from vitfleet.engines.build.demo_engines import prepare_demo_engines

    engines, bundle = prepare_demo_engines(s.demo_dir, s.bundle, s.engines, quiet=True)
    if s.engines is not None and bundle is not None:
        from vitfleet.decompose.bundle import read_bundle
        from vitfleet.engines.runtime.manifest import read_manifest

        if read_manifest(engines).bundle_id != read_bundle(bundle).bundle_id:
            raise LoadgenInputError(
                f"{engines} was not built from {bundle}; pass the bundle the engines came from, or leave --bundle out"
            )
    return engines


def sample_library(engines: Path, count: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(images as the camera sends them, labels, URI): the bundle's test split through its `dataset://` replay."""
    from vitfleet.camera.sources import open_source
    from vitfleet.engines.runtime.manifest import read_manifest
    from vitfleet.fleet.demo import replay_uri

    uri = replay_uri(read_manifest(engines)) + (f"&limit={count}" if count else "")
    source = open_source(uri)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    if not frames:
        raise LoadgenInputError(f"{uri} holds no images; check the data set (see `vitfleet eval --help`)")
    return np.stack([f.image for f in frames]), np.array([f.label for f in frames], np.int64), uri


def fp32_reference(engines: Path, count: int) -> float:
    """Accuracy of the same bundle's fp32 ONNX engines, run offline here on the first `count` test images."""
    from vitfleet.datasets import load_dataset
    from vitfleet.engines.runtime.backends import load_fusion_engine, load_part_engine
    from vitfleet.engines.runtime.errors import EngineError
    from vitfleet.engines.runtime.manifest import read_manifest

    manifest = read_manifest(engines)
    data = load_dataset(manifest.dataset or "fashion-mnist", "test", pre=manifest.preprocessing).head(count)
    try:
        parts = [load_part_engine(engines, i, precision="fp32") for i in range(manifest.num_parts)]
    except EngineError as exc:
        raise LoadgenInputError(
            f"{engines} has no fp32 part engines to take the reference from ({exc}); rebuild "
            "it with `vitfleet engines build`, which keeps them"
        ) from None
    fusion = load_fusion_engine(engines)
    correct = 0
    for start in range(0, len(data), 128):  # batches: a ViT-B/16 split at 224² does not fit at once
        x = manifest.preprocessing.normalize(data.images[start : start + 128])
        feats = np.concatenate([np.asarray(p.infer(x), np.float32) for p in parts], axis=1)
        logits = fusion.fuse(feats, np.ones((len(x), manifest.num_parts), np.float32))
        correct += int((np.argmax(logits, axis=1) == data.labels[start : start + 128]).sum())
    return correct / len(data)


def loadgen_test_settings(s: LoadgenSettings, library_size: int) -> Any:
    lg = _require_loadgen()
    d = DEFAULTS[s.scenario]
    ts = lg.TestSettings()
    ts.scenario = {
        "singlestream": lg.TestScenario.SingleStream,
        "multistream": lg.TestScenario.MultiStream,
        "offline": lg.TestScenario.Offline,
    }[s.scenario]
    ts.mode = lg.TestMode.AccuracyOnly if s.mode == "accuracy" else lg.TestMode.PerformanceOnly
    ts.min_duration_ms = int(1000 * (s.min_duration_s or d.min_duration_s))
    ts.max_duration_ms = int(1000 * s.max_duration_s)
    ts.min_query_count = s.min_queries or d.min_queries
    ts.performance_sample_count_override = library_size
    expected_ns = int(s.expected_latency_ms * 1e6)
    ts.single_stream_expected_latency_ns = expected_ns
    ts.multi_stream_samples_per_query = s.samples_per_query
    ts.multi_stream_expected_latency_ns = expected_ns * s.samples_per_query
    ts.offline_expected_qps = s.expected_qps
    return ts


def log_settings(log_dir: Path) -> Any:
    lg = _require_loadgen()
    out = lg.LogOutputSettings()
    out.outdir = str(log_dir)
    out.copy_summary_to_stdout = False  # --json keeps stdout for the report
    settings = lg.LogSettings()
    settings.log_output = out
    settings.enable_trace = False  # the trace is megabytes per run and nothing here reads it
    return settings


def run_loadgen(s: LoadgenSettings) -> dict[str, Any]:
    """Boot the fleet, let LoadGen drive it, and write the report; returns the report."""
    from vitfleet.bench.loadgen_report import build_report, write_report
    from vitfleet.bench.loadgen_sut import FleetSUT
    from vitfleet.engines.runtime.manifest import read_manifest
    from vitfleet.fleet.demo import replay_uri
    from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions

    lg = _require_loadgen()
    engines = resolve_engines(s)
    images, labels, uri = sample_library(engines, s.count)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    for stale in s.log_dir.glob("mlperf_log_*"):  # an accuracy log left from another mode would be re-scored
        stale.unlink()
    options = LocalFleetOptions(
        camera_uri=replay_uri(read_manifest(engines)), fps=0.0, max_in_flight=s.max_in_flight, online_timeout=180.0
    )
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    with LocalFleet(engines, s.work_dir.resolve() / "run", options) as fleet:
        assert fleet.broker is not None and fleet.config is not None
        with FleetSUT(
            fleet.broker, fleet.config.name, images, labels, s.max_in_flight, s.encoding, s.lost_after_s
        ) as sut:
            lg.StartTestWithLogSettings(
                sut.sut_handle, sut.qsl_handle, loadgen_test_settings(s, len(images)), log_settings(s.log_dir)
            )
            camera = sut.finish()
            counts = sut.counts
        fleet.procs.check_alive(list(fleet.procs.children))
    reference = fp32_reference(engines, len(images)) if s.mode == "accuracy" else None
    report = build_report(s, engines, uri, labels, counts, camera, reference, started, load_before)
    write_report(report, s.report_path)
    return report
