"""`vitfleet bench loadgen` as a user runs it: MLPerf LoadGen driving a real local fleet (private mosquitto, agent
and aggregator processes, int8 ONNX Runtime engines of the engines tests' tiny bundle) through the camera path.

Short runs (a 200-image library, 2 s minimum duration); what they check is that LoadGen's run completes every sample
through the fleet, that its own logs are kept and read back right, and that accuracy mode scores the fleet's answers
against the labels (checked against ONNX Runtime run directly on the same images). Speed is not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401

pytestmark = pytest.mark.timeout(240, func_only=True)  # the tiny bundle's training is a fixture, not ours to bound

LIBRARY = 200


def _loadgen(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", "bench", "loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run(engines: Path, tmp: Path, scenario: str, *extra: str, min_duration: str = "2") -> tuple[dict[str, Any], Path]:
    out = tmp / f"loadgen-{scenario}.json"
    done = _loadgen(
        [
            "--scenario",
            scenario,
            "--engines",
            str(engines),
            "--count",
            str(LIBRARY),
            "--min-duration",
            min_duration,
            "--out",
            str(out),
            "--work-dir",
            str(tmp / "run"),
            "--json",
            *extra,
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert json.loads(out.read_text()) == report
    logs = Path(report["files"]["summary"]).parent
    assert logs == tmp / "loadgen" / scenario  # LoadGen's logs beside the report, named after it
    return report, logs


def _check_performance(report: dict[str, Any], logs: Path, scenario_name: str) -> None:
    from vitfleet.bench.loadgen_report import read_summary

    sut, lg = report["sut"], report["loadgen"]
    # every sample LoadGen issued went through the fleet and came back answered
    assert sut["issued"] > 0 and sut["completed"] == sut["issued"]
    assert sut["lost"] == 0 and sut["unmatched"] == 0 and sut["malformed"] == 0
    assert report["camera"]["admitted"] == sut["issued"] and report["camera"]["lost"] == 0
    assert lg["validity"] == "VALID" and lg["why"] == [] and report["ok"]
    summary = read_summary(logs / "mlperf_log_summary.txt")
    assert summary["Scenario"] == scenario_name and summary["Mode"] == "PerformanceOnly"
    assert summary["Result is"] == "VALID" and (logs / "mlperf_log_detail.txt").stat().st_size > 0
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert report["samples_per_second"] > 0
    assert report["machine"]["cpu"] and report["date"] and report["command"].startswith("vitfleet bench loadgen")


def test_singlestream_runs_every_query_through_the_fleet(tiny_engines: Path, tmp_path: Path) -> None:  # noqa: F811
    report, logs = _run(tiny_engines, tmp_path, "singlestream", "--min-queries", "64")
    _check_performance(report, logs, "SingleStream")
    # one sample per query, one query at a time: LoadGen's query count is the samples the fleet answered
    assert report["loadgen"]["query_count"] == report["sut"]["completed"] >= 64
    assert report["metric"] == "p90 latency" and report["accuracy"] is None
    # MLPerf's SingleStream result: LoadGen's early-stopping p90 estimate, never below the plain p90
    assert report["mlperf_result"]["key"] == "early_stopping_latency_ss"
    assert report["mlperf_result"]["value"] >= report["latency_ms"]["p90"]
    # the docs section is generated from the JSON: appended after what the file holds, then rewritten in place
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other section\n\nkept as it is\n")
    for _ in range(2):
        done = _loadgen(["--render-only", "--docs", str(doc), "--out", str(tmp_path / "loadgen-singlestream.json")])
        assert done.returncode == 0, done.stderr
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n## Other section\n\nkept as it is\n\n<!-- loadgen:start -->")
    assert text.count("## LoadGen (MLPerf)") == 1 and text.rstrip().endswith("<!-- loadgen:end -->")
    fleet = report["fleet"]
    row = next(line for line in text.splitlines() if line.startswith(f"| {fleet['method']} K={fleet['parts']} int8"))
    assert f"**{report['mlperf_result']['value']:.2f} ms**" in row and report["command"] in row


def test_offline_sends_its_one_query_through_the_credits(tiny_engines: Path, tmp_path: Path) -> None:  # noqa: F811
    # LoadGen sizes its one query as 1.1 x expected qps x min duration and calls the run INVALID if the fleet
    # answers it sooner than min duration: 1,000 samples/s is well beyond what 2 credits over MQTT can do.
    report, logs = _run(tiny_engines, tmp_path, "offline", "--expected-qps", "1000", min_duration="1")
    _check_performance(report, logs, "Offline")
    # one query, all of its samples answered
    assert report["loadgen"]["query_count"] == 1
    assert report["sut"]["completed"] == report["loadgen"]["samples_per_query"] >= 100
    assert report["mlperf_result"] == {
        "key": "result_samples_per_second",
        "value": report["samples_per_second"],
        "unit": "samples/s",
    }


def _onnx_predictions(engines: Path, images: np.ndarray, precision: str) -> np.ndarray:
    """The fleet's arithmetic, written out with ONNX Runtime alone: normalise, each part, float16 features (the
    wire format) for the int8 fleet, fusion with every part present."""
    import onnxruntime as ort

    manifest = json.loads((engines / "manifest.json").read_text())
    pre = manifest["preprocessing"]
    x = (images.astype(np.float32) / 255.0 - np.float32(pre["mean"])) / np.float32(pre["std"])
    x = x.transpose(0, 3, 1, 2).astype(np.float32)
    suffix = ".int8.onnx" if precision == "int8" else ".onnx"
    parts = [ort.InferenceSession(str(engines / f"part{i}{suffix}")) for i in range(manifest["num_parts"])]
    fusion = ort.InferenceSession(str(engines / "fusion.onnx"))
    out = []
    for image in x:
        feats = np.concatenate([p.run(None, {p.get_inputs()[0].name: image[None]})[0] for p in parts], axis=1)
        if precision == "int8":
            feats = feats.astype(np.float16).astype(np.float32)
        logits = fusion.run(None, {"features": feats, "mask": np.ones((1, len(parts)), np.float32)})[0]
        out.append(int(logits.argmax()))
    return np.array(out)


def test_accuracy_mode_scores_the_fleets_answers(tiny_engines: Path, tmp_path: Path) -> None:  # noqa: F811
    from vitfleet.datasets import load_fashion_mnist

    report, logs = _run(tiny_engines, tmp_path, "offline", "--mode", "accuracy")
    assert report["mode"] == "accuracy" and report["sut"]["completed"] == LIBRARY and report["sut"]["lost"] == 0
    test = load_fashion_mnist("test")
    images, labels = test.images[:LIBRARY], test.labels[:LIBRARY]
    # LoadGen's accuracy log, decoded here: every library image exactly once, its response the predicted class
    entries = json.loads((logs / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(LIBRARY))
    fleet = np.zeros(LIBRARY, np.int64)
    for e in entries:
        fleet[e["qsl_idx"]] = int.from_bytes(bytes.fromhex(e["data"]), "little", signed=True)
    direct = _onnx_predictions(tiny_engines, images, "int8")
    assert (fleet == direct).mean() >= 0.99  # the same engines; float16 features may flip a near tie
    acc = report["accuracy"]
    assert acc["images"] == LIBRARY and acc["correct"] == int((fleet == labels).sum())
    assert abs(acc["accuracy"] - (direct == labels).mean()) <= 0.01 + 1e-9
    fp32 = (_onnx_predictions(tiny_engines, images, "fp32") == labels).mean()
    assert acc["fp32_reference"] == pytest.approx(fp32, abs=1e-5)
    assert acc["of_fp32"] == pytest.approx(acc["accuracy"] / fp32, abs=1e-4)
    assert acc["pass"] == (acc["accuracy"] >= 0.99 * fp32) and report["ok"] == acc["pass"]


def test_bad_input_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    for args, words in (
        (["--scenario", "server"], ["unknown scenario 'server'", "--scenario singlestream"]),
        (
            ["--scenario", "offline", "--engines", str(tmp_path / "missing")],
            ["is not a folder", "pass an existing engines folder"],
        ),
        (["--scenario", "offline", "--engines", str(tmp_path)], ["holds no manifest.json"]),
        (["--scenario", "offline", "--mode", "fast"], ["unknown mode 'fast'", "--mode performance"]),
    ):
        done = _loadgen(args, timeout=60)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), lines[0]
