"""The terminal dashboard renders what the fleet reports (no display here, so the OpenCV window is not used)."""

from __future__ import annotations

import logging

from rich.console import Console

from vitfleet.agent.board_reports import BoardReports
from vitfleet.agent.malformed import MalformedCounter
from vitfleet.agent.web.state import FleetSnapshot, PredictionRow
from vitfleet.fleet.dashboard import has_display_window, render
from vitfleet.power_message import PowerSnapshot
from vitfleet.stats_message import AgentStats, AggregatorStats, CameraStats
from vitfleet.topics import Availability

_NOW = 1_732_380_000.0
SNAPSHOT = FleetSnapshot(
    BoardReports(
        MalformedCounter(logging.getLogger("test")),
        available={
            "agent0": Availability.ONLINE,
            "agent1": Availability.OFFLINE,
            "aggregator": Availability.ONLINE,
            "camera": Availability.ONLINE,
        },
        stats={
            "agent0": AgentStats(
                board="agent0",
                ts=_NOW,
                fps=9.8,
                infer_p50_ms=0.41,
                infer_p99_ms=1.2,
                drops=3,
                cpu_percent=35.0,
                rss_mb=120.0,
            ),
            "aggregator": AggregatorStats(
                board="aggregator",
                ts=_NOW,
                fps=9.8,
                predictions=120,
                degraded=7,
                late=1,
                hop_p50_ms=0.21,
                hop_p99_ms=0.9,
                deadline_ms=50.0,
                deadline_source="measured",
                fleet_watts=9.5,
                mj_per_frame=812.5,
                power_estimated=True,
            ),
            "camera": CameraStats(board="camera", ts=_NOW, fps=9.8, e2e_p50_ms=2.5, e2e_p99_ms=6.1, accuracy=0.8123),
        },
        power={"agent0": PowerSnapshot(ts=_NOW, watts=4.75, joules=1.0, frames=1, source="rapl", estimated=False)},
    ),
    PredictionRow(
        frame_id=42,
        camera="cam0",
        class_name="Sneaker",
        class_id=7,
        score=0.93,
        label=5,
        degraded=True,
        missing_parts=[1],
        e2e_ms=3.0,
        at=_NOW,
    ),
    120,
)


def _text(snapshot) -> str:
    console = Console(record=True, width=140)
    console.print(render(snapshot, [f"c{i}" for i in range(10)]))
    return console.export_text()


def test_dashboard_shows_boards_fleet_figures_and_the_latest_prediction():
    text = _text(SNAPSHOT)
    assert "frame 42: Sneaker (0.93)" in text and "wrong, label c5" in text and "degraded, missing parts [1]" in text
    assert "agent1" in text and "offline" in text and "0.41/1.20" in text
    assert "2.50 ms / 6.10 ms" in text and "0.210 ms / 0.900 ms" in text and "81.23 %" in text
    assert "812.50 mJ (estimated)" in text and "4.75" in text and "50 ms (measured)" in text


def test_dashboard_before_the_first_prediction():
    empty = FleetSnapshot(BoardReports(MalformedCounter(logging.getLogger("test"))), None, 0)
    assert "waiting for the first prediction" in _text(empty)


def test_no_window_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not has_display_window()
