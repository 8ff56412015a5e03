"""`vitfleet power`: --list, a short live readout with --json and --csv, and one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from vitfleet.cli import app

runner = CliRunner()


def _no_power_hardware() -> bool:
    return not (
        Path("/sys/class/powercap").exists()
        or any(Path("/sys/class/hwmon").glob("hwmon*"))
        or shutil.which("vcgencmd")
        or shutil.which("tegrastats")
    )


def test_list_shows_every_meter_and_why() -> None:
    result = runner.invoke(app, ["power", "--list", "--json", "--kind", "x86"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["meter"] for r in rows] == [
        "jetson-jtop",
        "ina3221-hwmon",
        "tegrastats",
        "rpi5-pmic",
        "ina2xx-hwmon",
        "rapl",
        "psutil-estimate",
    ]
    assert all(r["reason"] for r in rows)
    assert rows[-1]["available"] and "ESTIMATE" in rows[-1]["reason"]
    if _no_power_hardware():
        assert not any(r["available"] for r in rows[:-1])
        assert "no /sys/class/powercap" in rows[5]["reason"]


def test_list_table_keeps_literal_brackets() -> None:
    result = runner.invoke(app, ["power", "--list"])
    assert result.exit_code == 0, result.output
    assert "psutil-estimate" in result.stdout
    if _no_power_hardware():
        assert "vitfleet[jetson]" in result.stdout.replace("\n", "").replace("│", "").replace(" ", "")


def test_readout_json_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "power.csv"
    result = runner.invoke(
        app, ["power", "--duration", "0.6", "--rate", "20", "--json", "--csv", str(out), "--kind", "pi5"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["samples"] >= 5 and summary["read_errors"] == 0 and summary["csv"] == str(out)
    assert summary["watts_min"] <= summary["watts_mean"] <= summary["watts_max"]
    assert summary["joules"] > 0 and summary["seconds"] > 0.3
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == summary["samples"]
    assert abs(float(rows[-1]["joules"]) - summary["joules"]) < 1e-3  # the CSV keeps 4 decimals
    if _no_power_hardware():
        assert summary["source"] == "psutil-estimate" and summary["estimated"] is True
        assert {r["estimated"] for r in rows} == {"1"}
        # pi5 profile: 3 W idle + 1.1 W per busy core
        assert 3.0 <= summary["watts_min"] and summary["watts_max"] <= 3.0 + 1.1 * 64


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["power", "--kind", "toaster"])
    assert result.exit_code == 2
    assert "--kind 'toaster' is not a board kind" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["power", "--duration", "0.2", "--csv", str(tmp_path / "no" / "dir.csv")])
    assert result.exit_code == 2
    assert "cannot write --csv" in result.output and "Traceback" not in result.output


def test_help() -> None:
    result = runner.invoke(app, ["power", "--help"])
    assert result.exit_code == 0
    for option in ("--csv", "--duration", "--rate", "--list", "--kind", "--json"):
        assert option in result.output


def test_board_side_power_imports_without_torch_or_jtop() -> None:
    import subprocess
    import sys

    code = (
        "import sys, power.detect, power.sampler, power.fleet_energy, power.cli; "
        "heavy = sorted({'torch', 'jtop', 'timm'} & set(sys.modules)); print(heavy); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
