"""`lost` and `answered_late` on a real fleet (docs/protocol.md, "Admission"): a frame whose answer does not come
within the camera's reclaim timeout is lost for good, and an answer that still comes afterwards is counted
`answered_late` as well; both are in the camera node's `--json` summary, its stats messages and `/metrics`.

A real mosquitto, the aggregator and two agents as `vitfleet` processes on real int8 ONNX Runtime engines, an
in-process camera node and web view. The aggregator is frozen (SIGSTOP) for longer than the reclaim timeout while
frames are in flight, then resumed: the answers of the frames out at the freeze come back late.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from mqtt_fixtures import wait_until
from prometheus_client.parser import text_string_to_metric_families

from vitfleet.agent.web.server import open_view
from vitfleet.agent.web.state import ViewState
from vitfleet.stats_message import CameraStats

pytestmark = pytest.mark.timeout(120, func_only=True)

FREEZE_S = 3.5  # longer than the camera's reclaim timeout (2 s: 3 x e2e p99, at least 2 s)


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "metrics", timeout=5) as res:
        text = res.read().decode()
    return {
        s.name: s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.labels.get("board") == "camera"
    }


def test_a_frozen_aggregator_makes_frames_lost_then_answered_late_and_every_report_says_both(
    broker,
    fleet_engines: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    fleet = Fleet(broker, fleet_engines, tmp_path, deadline_ms=300)
    web = None
    try:
        fleet.start()
        assert fleet.config is not None
        web = open_view(broker.config, fleet.config.name, "127.0.0.1:0", [b.name for b in fleet.config.boards]).start()
        node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=20, drain=3.0)
        try:
            # enough answers for the camera to adapt its reclaim timeout to the measured latency (2 s floor)
            assert wait_until(lambda: node.counts["predictions"] >= 30, 30), node.counts
            assert node.gate.timeout == pytest.approx(2.0)
            aggregator = fleet.procs.children["aggregator"].proc
            os.kill(aggregator.pid, signal.SIGSTOP)
            try:
                # the frames out at the freeze are reclaimed once the camera offers a frame after 2 s
                assert wait_until(lambda: node.gate.counts.lost >= 1, FREEZE_S + 1), node.gate.counts
                time.sleep(max(0.0, FREEZE_S - 2.0))
            finally:
                os.kill(aggregator.pid, signal.SIGCONT)
            assert wait_until(lambda: node.gate.counts.answered_late >= 1, 10), node.gate.counts
            count = node.counts["predictions"]
            assert wait_until(lambda: node.counts["predictions"] >= count + 20, 15)  # the fleet runs on
        finally:
            node.stop()
            thread.join(20)
        summary = node.result
        # the camera's last stats (published after its drain) say what its summary says
        assert wait_until(
            lambda: (
                isinstance(fleet.view.stats_of("camera"), CameraStats)
                and fleet.view.stats_of("camera").admitted == summary["admitted"]
            ),
            5,
        )
        stats = fleet.view.stats_of("camera")
        assert wait_until(
            lambda: _metrics(web.url).get("vitfleet_camera_frames_sent_total") == summary["frames_sent"], 5
        )
        metrics = _metrics(web.url)
        with urllib.request.urlopen(web.url + "api/state", timeout=5) as res:
            page = ViewState.model_validate_json(res.read()).summary
    finally:
        if web is not None:
            web.stop()
        fleet.stop()

    lost, late = summary["lost"], summary["answered_late"]
    assert 1 <= late <= lost, summary  # answered late, and still lost
    # every admitted frame is either answered in time, or lost (some of which were answered late)
    assert summary["admitted"] == summary["predictions"] + lost - late, summary
    assert summary["ok"] is False  # a lost frame, even one answered late, fails the run
    assert (stats.lost, stats.answered_late, stats.offered, stats.skipped) == (
        lost,
        late,
        summary["offered"],
        summary["skipped"],
    )
    assert metrics["vitfleet_camera_lost_frames_total"] == lost
    assert metrics["vitfleet_camera_answered_late_frames_total"] == late
    assert (page.lost, page.answered_late) == (lost, late)  # the web page's /api/state
