"""`vitfleet demo` as a user runs it (a real subprocess tree), on the engines tests' int8 engines."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401

pytestmark = pytest.mark.timeout(180, func_only=True)  # fixtures (bundle training) are not ours to bound


def _demo(args: list[str], timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", "demo", *args], capture_output=True, text=True, timeout=timeout
    )


def _rows(log: Path) -> list:
    from vitfleet.agent.prediction_log import read_predictions

    try:
        return read_predictions(log)
    except sqlite3.Error:  # created but not initialised yet
        return []


def _leftovers(marker: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if marker in cmd:
            found.append(cmd)
    return found


def test_demo_runs_headless_for_n_frames_and_exits_0(tiny_engines: Path, tmp_path: Path):  # noqa: F811
    work = tmp_path / "demo"
    run = _demo(
        [
            "--frames",
            "40",
            "--fps",
            "40",
            "--headless",
            "--json",
            "--engines",
            str(tiny_engines),
            "--work-dir",
            str(work),
        ]
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["ok"] and result["frames_sent"] == 40 and result["predictions"] == 40 and result["lost"] == 0
    # No webcam here: the replay of the bundle's own test split, at the model's size and channels.
    assert result["camera"] == "dataset://fashion-mnist/test?size=28&channels=1"
    assert result["accuracy"] is not None and result["e2e_p50_ms"] > 0
    assert set(result["boards"]) == {"agent0", "agent1"}
    assert all(code == 0 for code in result["exit_codes"].values())
    assert result["hop_p50_ms"] is not None and result["mj_per_frame"] is not None and result["power_estimated"]
    assert (work / "run" / "predictions.sqlite").exists() and not _leftovers(str(work))


@pytest.mark.slow
def test_demo_accuracy_matches_engines_check(tiny_engines: Path, tiny_bundle: Path, tmp_path: Path):  # noqa: F811
    """Fleet accuracy on a lockstep dataset:// replay == `vitfleet engines check`'s offline accuracy, +-0.1 pt.

    1,000 frames, so 0.1 pt is one image: features cross the wire as float16, which may flip a borderline one.
    """
    from vitfleet.engines.check import check_engines

    n = 1000
    run = _demo(
        [
            "--accuracy",
            "--frames",
            str(n),
            "--headless",
            "--json",
            "--engines",
            str(tiny_engines),
            "--work-dir",
            str(tmp_path / "demo"),
        ]
    )
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    result = json.loads(run.stdout)
    assert result["predictions"] == n and result["degraded"] == 0 and result["lost"] == 0
    checked = check_engines(tiny_engines, tiny_bundle, n_images=n)["fused_accuracy_engine"]
    assert result["offline_accuracy"] == pytest.approx(checked, abs=1e-9)  # the reference is engines check's
    assert abs(result["accuracy_diff_pt"]) <= 0.1 + 1e-9 and result["accuracy_matches"]
    assert abs(100 * (result["accuracy"] - checked)) <= 0.1 + 1e-9


def test_ctrl_c_stops_the_whole_fleet_cleanly(tiny_engines: Path, tmp_path: Path):  # noqa: F811
    work = tmp_path / "demo"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vitfleet.cli",
            "demo",
            "--headless",
            "--json",
            "--fps",
            "20",
            "--engines",
            str(tiny_engines),
            "--work-dir",
            str(work),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        log = work / "run" / "predictions.sqlite"
        flowing = False
        while time.monotonic() < deadline and not flowing:
            time.sleep(0.5)
            flowing = log.exists() and len(_rows(log)) >= 5
        assert flowing, "the fleet did not start"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:] + out[-3000:]
    result = json.loads(out)
    assert result["interrupted"] and result["predictions"] >= 5
    assert all(code == 0 for code in result["exit_codes"].values()), result["exit_codes"]
    assert not _leftovers(str(work))
