"""The demo's live view: an OpenCV window when a display exists, else a rich terminal dashboard; both render
the fleet's one state reader (agent/web/state.py), as the web view does."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vitfleet.agent.web.state import FleetSnapshot, WebState
from vitfleet.stats_message import AgentStats, AggregatorStats, CameraStats, first_of
from vitfleet.topics import Availability


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def render(snapshot: FleetSnapshot, class_names: list[str] | None = None) -> Group:
    reports = snapshot.reports
    stats, power, available = reports.stats, reports.power, reports.available
    pred = snapshot.prediction
    if pred:
        label = pred.label
        verdict = (
            ""
            if label is None
            else (
                "  [green]correct[/]"
                if label == pred.class_id
                else f"  [red]wrong, label {class_names[label] if class_names else label}[/]"
            )
        )
        flag = f"  [yellow]degraded, missing parts {pred.missing_parts}[/]" if pred.degraded else ""
        head = Text.from_markup(f"frame {pred.frame_id}: [bold]{pred.class_name}[/] ({pred.score:.2f}){verdict}{flag}")
    else:
        head = Text("waiting for the first prediction…")
    boards = Table(title="boards", expand=True)
    for col in ("board", "role", "status", "fps", "infer p50/p99 ms", "drops", "cpu %", "mem MB", "watts"):
        boards.add_column(col)
    for name in sorted(set(available) | set(stats)):
        s = stats.get(name)
        p = power.get(name)
        a = s if isinstance(s, AgentStats) else None
        state = available.get(name)
        status = "?" if state is None else state.value
        boards.add_row(
            name,
            s.role if s else "",
            f"[green]{status}[/]" if state == Availability.ONLINE else f"[red]{status}[/]",
            _fmt(s.fps if s else None, digits=1),
            f"{_fmt(a.infer_p50_ms)}/{_fmt(a.infer_p99_ms)}" if a else "",
            _fmt(a.drops if a else None),
            _fmt(a.cpu_percent if a else None, digits=0),
            _fmt(a.rss_mb if a else None, digits=0),
            _fmt(p.watts if p else None, digits=2),
        )
    agg = first_of(stats, AggregatorStats) or AggregatorStats(board="-", ts=0.0, fps=0.0)
    cam = first_of(stats, CameraStats) or CameraStats(board="-", ts=0.0, fps=0.0)
    seen = first_of(stats, AggregatorStats) is not None
    fleet = Table(show_header=False, title="fleet", expand=True)
    fleet.add_column("k", style="bold")
    fleet.add_column("v")
    est = " (estimated)" if agg.power_estimated else ""
    rows = [
        (
            "predictions / degraded / late",
            f"{_fmt(agg.predictions)} / {_fmt(agg.degraded)} / {_fmt(agg.late)}" if seen else "- / - / -",
        ),
        ("end-to-end p50 / p99", f"{_fmt(cam.e2e_p50_ms, ' ms')} / {_fmt(cam.e2e_p99_ms, ' ms')}"),
        ("MQTT hop p50 / p99", f"{_fmt(agg.hop_p50_ms, ' ms', 3)} / {_fmt(agg.hop_p99_ms, ' ms', 3)}"),
        ("fusion deadline", f"{_fmt(agg.deadline_ms, ' ms', 0)} ({agg.deadline_source or '-'})"),
        (
            "frames sent / skipped / lost (answered late)",
            f"{_fmt(cam.frames_sent)} / {_fmt(cam.skipped)} / {_fmt(cam.lost)} ({_fmt(cam.answered_late)})",
        ),
        ("running accuracy", _fmt(None if cam.accuracy is None else 100 * cam.accuracy, " %")),
        ("fleet power", f"{_fmt(agg.fleet_watts, ' W')}{est}"),
        ("energy per frame", f"{_fmt(agg.mj_per_frame, ' mJ')}{est}"),
    ]
    for k, v in rows:
        fleet.add_row(k, v)
    return Group(Panel(head, title="latest prediction"), boards, fleet)


def has_display_window() -> bool:
    """True when OpenCV can open a window here (a display and a GUI-enabled OpenCV build)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        import cv2

        cv2.namedWindow("vitfleet", cv2.WINDOW_NORMAL)
        return True
    except Exception:  # noqa: BLE001 - opencv-python-headless raises cv2.error here
        return False


def show_window(view: WebState) -> bool:
    """Draw the latest frame with its prediction; False once the user closed the window or pressed q."""
    import cv2
    import numpy as np

    frame, pred, _ = view.frame_for_display()
    canvas = np.zeros((360, 480, 3), np.uint8)
    if frame is not None:
        img = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.shape[2] == 1 else frame
        h, w = img.shape[:2]
        scale = min(480 / w, 300 / h)
        img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_NEAREST)
        canvas[: img.shape[0], : img.shape[1]] = img
    if pred:
        text = f"{pred.class_name} {pred.score:.2f}" + (" DEGRADED" if pred.degraded else "")
        cv2.putText(canvas, text, (8, 340), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2)
    cv2.imshow("vitfleet", canvas)
    key = cv2.waitKey(1) & 0xFF
    return key != ord("q") and cv2.getWindowProperty("vitfleet", cv2.WND_PROP_VISIBLE) >= 1
