"""Write a run's outputs: results.json and the PNGs in the results folder, the report section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vitfleet.bench.contenders import Contender
from vitfleet.bench.plots import all_plots
from vitfleet.bench.report import render, write_section
from vitfleet.bench.settings import BenchSettings


def _contender(row: dict[str, Any]) -> Contender:
    fields = Contender.__dataclass_fields__
    return Contender(**{k: v for k, v in row.items() if k in fields})


def publish(results: dict[str, Any], settings: BenchSettings) -> dict[str, str]:
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    # First, so a failure in plotting or rendering never loses a run's figures (re-render with --render-only).
    results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    contenders = [_contender(r) for r in results["contenders"]]
    tag = "Fashion-MNIST" + (" (quick mode)" if results["quick"] else "")
    plots = all_plots(contenders, out, tag)
    write_section(Path(settings.report), render(results, Path(settings.report), plots))
    return {"results": str(results_path), **plots}
