"""`vitfleet power`: which power meter this machine has, and a live readout of it."""

from __future__ import annotations

import csv as csv_module
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from vitfleet.board_kinds import board_kind_names
from vitfleet.console import console, emit, emit_rows, user_errors
from vitfleet.errors import UserError
from vitfleet.power.detect import meters_help


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title="power", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


def run_readout(
    meter: Any, duration_s: float, rate_hz: float, csv_path: Path | None, live: Live | None = None
) -> dict[str, Any]:
    """Sample `meter` in this thread for duration_s (0 = until Ctrl-C); returns the summary figures."""
    from vitfleet.power.sampler import PowerSampler

    sampler = PowerSampler(meter, rate_hz)
    handle = None
    writer = None
    if csv_path is not None:
        try:
            handle = csv_path.open("w", newline="")
        except OSError as exc:
            raise UserError(f"cannot write --csv {csv_path}: {exc.strerror or exc}") from None
        writer = csv_module.writer(handle)
        writer.writerow(["time_s", "unix_time", "watts", "joules", "source", "estimated"])
    low, high = float("inf"), 0.0
    start = sampler.now()
    next_tick = start
    next_refresh = start
    try:
        while duration_s <= 0 or sampler.now() - start < duration_s:
            if sampler.sample_once():
                t, watts = sampler.latest() or (0.0, 0.0)
                low, high = min(low, watts), max(high, watts)
                snap = sampler.snapshot()
                if writer is not None:
                    writer.writerow(
                        [
                            f"{t - start:.4f}",
                            f"{snap.ts:.4f}",
                            f"{watts:.4f}",
                            f"{snap.joules:.4f}",
                            snap.source,
                            int(snap.estimated),
                        ]
                    )
            if live is not None and sampler.now() >= next_refresh:
                live.update(_table(_summary(sampler, low, high, csv_path)))
                next_refresh += 1.0
            next_tick += sampler.period_s
            time.sleep(max(0.0, next_tick - sampler.now()))
    except KeyboardInterrupt:
        pass  # Ctrl-C ends an open-ended readout; the summary still prints
    finally:
        if handle is not None:
            handle.close()
    return _summary(sampler, low, high, csv_path)


def _summary(sampler: Any, low: float, high: float, csv_path: Path | None) -> dict[str, Any]:
    snap = sampler.snapshot()
    span = sampler.sampled_seconds
    meter = sampler.meter
    return {
        "source": meter.source,
        "estimated": meter.estimated,
        "detail": meter.detail,
        "watts_now": snap.watts,
        "watts_mean": snap.joules / span if span > 0 else snap.watts,
        "watts_min": low if sampler.samples else 0.0,
        "watts_max": high,
        "joules": snap.joules,
        "seconds": span,
        "samples": sampler.samples,
        "read_errors": sampler.read_errors,
        "rate_hz": 1.0 / sampler.period_s,
        "csv": str(csv_path) if csv_path else None,
    }


@user_errors
def power(
    csv: Annotated[Path | None, typer.Option("--csv", help="also write every sample to this CSV file")] = None,
    duration: Annotated[float, typer.Option(min=0.0, help="seconds to sample; 0 = until Ctrl-C")] = 0.0,
    rate: Annotated[float, typer.Option(min=0.1, max=1000.0, help="samples per second (a meter may cap it)")] = 10.0,
    list_: Annotated[
        bool,
        typer.Option(
            "--list", help="show every meter tried and why it is or is not usable; in detection order: " + meters_help()
        ),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option(
            help=f"board kind for the estimate's profile ({', '.join(board_kind_names())}); default: detected"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print figures as JSON")] = False,
) -> None:
    """Read this machine's power meter live (watts, joules); --list shows every meter and why."""
    from vitfleet.power.detect import detect_meter, probe_meters

    if kind is not None and kind not in board_kind_names():
        raise UserError(f"--kind {kind!r} is not a board kind; use one of {', '.join(board_kind_names())}")
    if list_:
        # Reasons hold literal brackets (pip extras, udev rules) that rich would read as markup.
        rows = [
            {"meter": p.name, "available": p.available, "reason": p.reason if as_json else escape(p.reason)}
            for p in probe_meters(kind)
        ]
        emit_rows(rows, as_json, title="power meters, in detection order")
        return
    meter = detect_meter(kind)
    try:
        if as_json:
            summary = run_readout(meter, duration, rate, csv)
        else:
            flag = "[bold yellow]ESTIMATED[/]" if meter.estimated else "[bold green]measured[/]"
            console.print(
                f"power meter: [bold]{escape(meter.source)}[/] ({flag}) — {escape(meter.detail)}", highlight=False
            )
            with Live(console=console, refresh_per_second=2, transient=True) as live:
                summary = run_readout(meter, duration, rate, csv, live)
    finally:
        meter.close()
    emit(summary, as_json, title="power")
