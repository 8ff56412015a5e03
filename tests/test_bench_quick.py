"""The benchmark harness, run for real in quick mode on a tiny self-made setup (teacher, bundles, engines,
mosquitto, agent processes), so `make bench` cannot rot. Plus the report's marker handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vitfleet.bench.report import BEGIN, END, ReportMarkersError, replace_section, write_section

INTRO, OUTRO = "# Benchmarks\n\nThe lead's words before.\n\n", "\n\nThe lead's words after.\n"


def _vitfleet(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_section_replaced_between_markers_only(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text(f"{INTRO}{BEGIN}\nold table\n{END}{OUTRO}")
    write_section(path, "new table")
    text = path.read_text()
    assert text == f"{INTRO}{BEGIN}\nnew table\n{END}{OUTRO}"
    write_section(path, "newer")  # idempotent shape: still one section
    assert path.read_text().count(BEGIN) == 1 and "new table" not in path.read_text()


def test_missing_file_gets_markers_and_markerless_file_is_refused(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.md"
    write_section(fresh, "body")
    assert fresh.read_text() == f"{BEGIN}\nbody\n{END}\n"
    with pytest.raises(ReportMarkersError, match="exactly one"):
        replace_section("no markers here", "body")
    with pytest.raises(ReportMarkersError):
        replace_section(f"{END}\n{BEGIN}\n", "body")


def test_full_run_without_teacher_is_one_line_error(tmp_path: Path) -> None:
    done = _vitfleet(
        "bench", "--runs", str(tmp_path), "--out", str(tmp_path / "r"), "--report", str(tmp_path / "b.md"), timeout=120
    )
    assert done.returncode == 2
    assert "--teacher" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "b.md").exists()


@pytest.mark.slow
def test_quick_bench_end_to_end(tmp_path: Path) -> None:
    from vitfleet.fleet.offline_accuracy import offline_accuracy

    report = tmp_path / "benchmarks.md"
    report.write_text(f"{INTRO}{BEGIN}\nstale\n{END}{OUTRO}")
    out = tmp_path / "results"
    done = _vitfleet(
        "bench",
        "--quick",
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(out),
        "--report",
        str(report),
        "--methods",
        "devit",
        "--json",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    assert json.loads((out / "results.json").read_text())["contenders"] == results["contenders"]
    by_name = {c["name"]: c for c in results["contenders"]}
    assert set(by_name) == {
        "teacher fp32",
        "compact fp32",
        "compact int8",
        "compact distilled fp32",
        "compact distilled int8",
        "devit K=2 fp32",
        "devit K=2 int8",
        "devit K=4 fp32",
        "devit K=4 int8",
    }
    # The fleets' bar is the more accurate compact model, from scratch or distilled from the teacher.
    strongest = results["compact"]["strongest"]["int8"]
    assert by_name[strongest]["top1"] == max(by_name["compact int8"]["top1"], by_name["compact distilled int8"]["top1"])
    assert Path(results["compact"]["distilled_dir"]).name.endswith("-distilled")
    assert (
        json.loads((Path(results["compact"]["distilled_dir"]) / "teacher.json").read_text())["recipe"]["kd_temperature"]
        == 4.0
    )
    for c in by_name.values():
        assert 0.1 < c["top1"] <= 1.0, c["name"]  # trained models beat chance (10 classes)
        assert all(0 < m <= p for m, p in zip(c["part_median_ms"], c["part_p99_ms"]))
        assert c["latency_runs"] == results["settings"]["latency_runs"]
        assert c["energy_mj_per_frame"] > 0 and c["energy_estimated"]
    teacher = by_name["teacher fp32"]
    for k in (2, 4):
        for precision in ("fp32", "int8"):
            c = by_name[f"devit K={k} {precision}"]
            assert len(c["part_median_ms"]) == len(c["bytes_per_board"]) == len(c["top1_without_part"]) == k
            assert c["largest_params"] < teacher["largest_params"]
            assert c["transport_ms"] > 0 and c["hop_p50_ms"] <= c["hop_p99_ms"]
            assert c["latency_ms"] == pytest.approx(c["slowest_part_ms"] + c["transport_ms"] + c["fusion_median_ms"])
    assert by_name["devit K=2 int8"]["largest_bytes"] < by_name["devit K=2 fp32"]["largest_bytes"]
    # K=2 ran for real: every lockstep frame answered, none degraded, and the fleet's live accuracy is the
    # offline accuracy of the very same engines on the same first test images.
    frames = results["settings"]["lockstep_frames"]
    engines = {b["parts"]: b for b in results["bundles"]}
    assert engines[2]["created_by_bench"]
    for precision in ("fp32", "int8"):
        run = by_name[f"devit K=2 {precision}"]["fleet_run"]
        assert run["lockstep"]["predictions"] == frames and run["lockstep"]["lost"] == 0
        assert run["lockstep"]["degraded"] == 0
        assert run["throughput_fps"] > 0 and run["pipelined"]["predictions"] > 0
        assert run["lockstep"]["e2e_p50_ms"] >= by_name[f"devit K=2 {precision}"]["slowest_part_ms"]
        engines_dir = Path(results["engines"][f"devit K=2 {precision}"])
        offline = offline_accuracy(engines_dir, "fashion-mnist", "test", frames)
        assert abs(run["lockstep"]["accuracy"] - offline) <= 1.0 / frames + 1e-9
    assert by_name["devit K=4 int8"]["fleet_run"] is None
    assert by_name["devit K=4 int8"]["transport_source"].startswith("computed")
    # Feature payload: the 72-byte header + a float16 vector.
    assert by_name["devit K=4 int8"]["feature_payload_bytes"] == 72 + 2 * results["feature_dims"]["devit K=4 int8"]
    assert set(results["goals"]) == {"devit K=4 int8"}
    assert {g["name"] for g in results["goals"]["devit K=4 int8"]} >= {
        "accuracy loss vs teacher",
        "critical-path latency vs teacher",
        "largest board engine vs teacher",
        "feature bytes per board per frame",
        "energy per frame vs teacher",
    }
    for name in ("pareto.png", "latency_breakdown.png", "size_per_board.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report.read_text()
    assert text.startswith(INTRO + BEGIN) and text.endswith(END + OUTRO) and "stale" not in text
    assert "QUICK mode" in text and "ESTIMATED" in text and "(computed)" in text
    assert "2.89x" in text and "28.9x" in text  # the papers' figures beside ours
    assert "distilled from the teacher (soft logits, T=4)" in text
    assert "](results/pareto.png)" in text
