"""A board installs only the `board` group. A fresh venv gets the wheel with that group alone (no torch,
no training code), and its agents and aggregator run a real fleet on real mosquitto with int8 engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from wheel_build import build_wheel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def board_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("board-venv")
    wheel = build_wheel(work)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"vitfleet[board] @ {wheel.as_uri()}"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return python


def test_the_board_group_has_no_training_side(board_python: str) -> None:
    probe = (
        "import importlib.util as u\n"
        "print(sorted(m for m in ('torch', 'timm', 'vitfleet.decompose', 'vitfleet.bench', "
        "'vitfleet.firmware_scripts', 'vitfleet.agent', 'vitfleet.engines.runtime.backends', 'onnxruntime') "
        "if u.find_spec(m) is not None))"
    )
    done = subprocess.run([board_python, "-c", probe], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    # The wheel carries every subpackage; the board group installs no torch, so the training side cannot load.
    assert "torch" not in done.stdout and "timm" not in done.stdout and "vitfleet.agent" in done.stdout
    helped = subprocess.run(
        [board_python, "-m", "vitfleet.cli", "agent", "--help"], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert helped.returncode == 0 and "--fleet" in helped.stdout, helped.stderr


def test_board_venv_agents_and_aggregator_run_a_fleet(
    board_python: str,
    broker,
    fleet_engines,  # noqa: F811
    tmp_path: Path,
) -> None:
    fleet = Fleet(broker, fleet_engines, tmp_path, deadline_ms=300, python=board_python).start()
    try:
        _node, summary = fleet.run_camera("dataset://fashion-mnist/test?limit=40", fps=0, max_in_flight=1, drain=3.0)
    finally:
        codes = fleet.stop()
    assert summary["predictions"] == 40 and summary["lost"] == 0 and summary["degraded"] == 0, summary
    assert summary["accuracy"] > 0.3, summary
    assert all(c == 0 for c in codes.values()), codes
