"""The demo's live view: an OpenCV window when a display exists, else a rich terminal dashboard."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vitfleet.agent.fleet_view import FleetView


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def render(snapshot: dict[str, Any], class_names: list[str] | None = None) -> Group:
    stats, power, available = snapshot["stats"], snapshot["power"], snapshot["available"]
    pred = snapshot["prediction"]
    if pred:
        label = pred.get("label")
        verdict = "" if label is None else ("  [green]correct[/]" if label == pred["class_id"] else
                                            f"  [red]wrong, label {class_names[label] if class_names else label}[/]")
        flag = f"  [yellow]degraded, missing parts {pred['missing_parts']}[/]" if pred.get("degraded") else ""
        head = Text.from_markup(f"frame {pred['frame_id']}: [bold]{pred['class_name']}[/] "
                                f"({pred.get('score', 0):.2f}){verdict}{flag}")
    else:
        head = Text("waiting for the first prediction…")
    boards = Table(title="boards", expand=True)
    for col in ("board", "role", "status", "fps", "infer p50/p99 ms", "drops", "cpu %", "mem MB", "watts"):
        boards.add_column(col)
    for name in sorted(set(available) | set(stats)):
        s = stats.get(name, {})
        watts = power.get(name, {}).get("watts")
        infer = f"{_fmt(s.get('infer_p50_ms'))}/{_fmt(s.get('infer_p99_ms'))}" if s.get("role") == "agent" else ""
        status = available.get(name, "?")
        boards.add_row(name, str(s.get("role", "")), f"[green]{status}[/]" if status == "online" else f"[red]{status}[/]",
                       _fmt(s.get("fps"), digits=1), infer, _fmt(s.get("drops")), _fmt(s.get("cpu_percent"), digits=0),
                       _fmt(s.get("rss_mb"), digits=0), _fmt(watts, digits=2))
    agg = next((s for s in stats.values() if s.get("role") == "aggregator"), {})
    cam = next((s for s in stats.values() if s.get("role") == "camera"), {})
    fleet = Table(show_header=False, title="fleet", expand=True)
    fleet.add_column("k", style="bold")
    fleet.add_column("v")
    est = " (estimated)" if agg.get("power_estimated") else ""
    rows = [
        ("predictions / degraded / late", f"{_fmt(agg.get('predictions'))} / {_fmt(agg.get('degraded'))} / "
                                          f"{_fmt(agg.get('late'))}"),
        ("end-to-end p50 / p99", f"{_fmt(cam.get('e2e_p50_ms'), ' ms')} / {_fmt(cam.get('e2e_p99_ms'), ' ms')}"),
        ("MQTT hop p50 / p99", f"{_fmt(agg.get('hop_p50_ms'), ' ms', 3)} / {_fmt(agg.get('hop_p99_ms'), ' ms', 3)}"),
        ("fusion deadline", f"{_fmt(agg.get('deadline_ms'), ' ms', 0)} ({agg.get('deadline_source', '-')})"),
        ("running accuracy", _fmt(None if cam.get("accuracy") is None else 100 * cam["accuracy"], " %")),
        ("fleet power", f"{_fmt(agg.get('fleet_watts'), ' W')}{est}"),
        ("energy per frame", f"{_fmt(agg.get('mj_per_frame'), ' mJ')}{est}"),
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


def show_window(view: FleetView) -> bool:
    """Draw the latest frame with its prediction; False once the user closed the window or pressed q."""
    import cv2
    import numpy as np

    with view.lock:
        frame = None if view.frame is None else view.frame.copy()
        pred = dict(view.prediction) if view.prediction else None
    canvas = np.zeros((360, 480, 3), np.uint8)
    if frame is not None:
        img = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.shape[2] == 1 else frame
        h, w = img.shape[:2]
        scale = min(480 / w, 300 / h)
        img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_NEAREST)
        canvas[: img.shape[0], : img.shape[1]] = img
    if pred:
        text = f"{pred['class_name']} {pred.get('score', 0):.2f}" + (" DEGRADED" if pred.get("degraded") else "")
        cv2.putText(canvas, text, (8, 340), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2)
    cv2.imshow("vitfleet", canvas)
    key = cv2.waitKey(1) & 0xFF
    return key != ord("q") and cv2.getWindowProperty("vitfleet", cv2.WND_PROP_VISIBLE) >= 1
