"""How the bench scripts (soak, faults) hand their report over: JSON or a printed summary, optionally a file,
and the exit code from the report's `ok`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit_report(
    report: dict[str, Any], as_json: bool, printer: Callable[[dict[str, Any]], None], out: Path | None = None
) -> int:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        printer(report)
    return 0 if report["ok"] else 1
