"""What the runtime bench scripts (bench/overload.py, bench/fleet_runtime.py) share: running `vitfleet demo ...`
as a subprocess for its `--json` summary, the load average around it, and writing a results file that names its
command, date and machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vitfleet.bench.machine import machine_facts


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_vitfleet_json(name: str, cmd: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run `cmd` (starting with "vitfleet", as a reader types it) with this interpreter; its JSON summary plus
    what the run was: the command, start time, exit code, load average before and after."""
    before, started = load_avg(), utc_now()
    proc = subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", *cmd[1:]], capture_output=True, text=True, timeout=timeout
    )
    if not proc.stdout.strip():
        raise SystemExit(
            f"{name}: `{' '.join(cmd)}` printed no summary (exit {proc.returncode}): "
            f"{proc.stderr.strip().splitlines()[-1:]}"
        )
    return {
        "summary": json.loads(proc.stdout),
        "command": " ".join(cmd),
        "started_utc": started,
        "exit_code": proc.returncode,
        "load_avg_before": before,
        "load_avg_after": load_avg(),
    }


def write_results(
    out: Path, script: str, argv: list[str] | None, body: dict[str, Any], machine: dict[str, Any] | None = None
) -> None:
    """The results file: the command that wrote it, the date, the machine, then the figures."""
    results = {
        "command": " ".join(["python", script, *(argv if argv is not None else sys.argv[1:])]),
        "date_utc": utc_now(),
        "machine": machine or machine_facts(),
        **body,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
