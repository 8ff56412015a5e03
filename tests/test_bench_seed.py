"""The seed-scale benchmark (`make bench SCALE=seed`) end to end at toy size: a random-init deit_tiny-shaped ViT at
64² through import, derive-only decomposition (0 epochs, both methods, K = 2), fp32 + int8 engines, isolated timing,
a real K = 2 fleet over mosquitto with JPEG frames, the report rows and the projected board table. Figures are
checked for consistency with each other, never against a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitfleet.bench.seed_settings import UNTRAINED_LABEL, tiny_seed_settings


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    from vitfleet.bench.seed_scale import publish, run

    runs = tmp_path_factory.mktemp("seed")
    s = tiny_seed_settings(runs)
    results = run(s, log=lambda m: None)
    publish(results, s)
    return results, runs


def test_rows_are_labelled_untrained_and_consistent(seed_run: tuple[dict, Path]) -> None:
    results, _ = seed_run
    rows = results["rows"]
    assert {(r["method"], r["parts"], r["precision"]) for r in rows} == {
        (m, 2, p) for m in ("devit", "edvit") for p in ("fp32", "int8")}
    for r in rows:
        assert r["label"] == UNTRAINED_LABEL
        assert r["largest_board_bytes"] < r["teacher_fp32_bytes"]
        assert r["largest_part_params"] < r["teacher_params"]
        assert r["all_boards_bytes"] >= r["largest_board_bytes"]
        assert r["feature_message_bytes"] == 72 + 2 * r["feature_dim"] <= 512
        assert r["critical_path_ms"] == pytest.approx(r["slowest_part_ms"] + r["fusion_ms"] + r["transport_ms"])
        assert r["speedup_vs_teacher_fp32"] == pytest.approx(
            results["teachers"][0]["fp32"]["median_ms"] / r["critical_path_ms"])
    int8 = {r["method"]: r for r in rows if r["precision"] == "int8"}
    fp32 = {r["method"]: r for r in rows if r["precision"] == "fp32"}
    for m in int8:  # symmetric int8 weights: the file shrinks
        assert int8[m]["largest_board_bytes"] < fp32[m]["largest_board_bytes"]


def test_real_fleet_ran_with_jpeg_frames(seed_run: tuple[dict, Path]) -> None:
    results, _ = seed_run
    runs = results["teachers"][0]["fleet_runs"]
    assert set(runs) == {"devit K=2 int8", "edvit K=2 int8"}
    for run in runs.values():
        assert "error" not in run, run
        assert run["encoding"] == "jpeg" and run["camera"].startswith("dataset://folder:")
        lock = run["lockstep"]
        assert lock["predictions"] == lock["frames_sent"] > 0 and lock["lost"] == 0
        assert lock["breakdown_p50_ms"]["infer_ms"] > 0
        assert all(v and v > 0 for v in run["peak_rss_mb"].values())
    r2 = [r for r in results["rows"] if r["precision"] == "int8"]
    assert all(r["transport_ms"] > 0 and r["measured_e2e_p50_ms"] > 0 for r in r2)
    jpeg = results["jpeg"]
    assert 72 < jpeg["frame_message_bytes_max"] < jpeg["raw_frame_message_bytes"]


def test_projection_and_report(seed_run: tuple[dict, Path]) -> None:
    results, runs = seed_run
    factors = {f["board"]: f["factor"] for f in results["board_factors"]}
    assert factors["Raspberry Pi 4B"] > factors["Raspberry Pi 5"] > 0  # 197 vs 49.8 ms over the same int8 figure
    proj = results["projection"]["2"]
    assert {p["board"] for p in proj} == set(factors)
    for p in proj:
        assert p["label"].startswith("projected")
        assert p["fleet_ms"] > p["slowest_part_ms"] + p["lan_ms"]
        assert p["speedup"] == pytest.approx(p["teacher_on_board_ms"] / p["fleet_ms"])
    saved = json.loads((runs / "seed.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    text = (runs / "benchmarks.md").read_text()
    assert text.count("<!-- seed:begin -->") == 1 and "## Seed scale" in text
    assert UNTRAINED_LABEL in text and "projected" in text and results["machine"]["cpu"] in text
    assert "AVX" in text.upper()
    assert results["teachers"][0]["imported_via"]
