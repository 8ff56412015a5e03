"""Camera sources against real servers: Debian's GStreamer RTSP server (H.264 over RTP), an HTTP MJPEG server,
H.264 MP4 files written by x264; a server restarted mid-run is reconnected and counted; an RTSP camera feeds a
real local fleet through a restart with no admitted frame lost; a missing V4L2 device is one line."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from mqtt_fixtures import wait_until
from stream_servers import MjpegServer, RtspServer, gstreamer_missing, write_h264_mp4

from vitfleet.camera.frame_rate import FrameRate
from vitfleet.camera.frame_source import Frame
from vitfleet.camera.sources import ReconnectingSource, open_source
from vitfleet.camera.stream_clock import StreamClock

pytestmark = pytest.mark.timeout(180, func_only=True)  # a hang guard only; fixtures (engines) are not ours

_GST_MISSING = gstreamer_missing()
needs_gstreamer = pytest.mark.skipif(_GST_MISSING is not None, reason=_GST_MISSING or "")


def _read(src: ReconnectingSource, n: int) -> list[Frame]:
    frames = [src.read() for _ in range(n)]
    assert all(f is not None for f in frames)
    return frames


def _hang_guard(stop: threading.Event) -> tuple[threading.Timer, threading.Event]:
    """After 60 s, stop the source (a broken reconnect ends the reads instead of hanging the run) and say so."""
    gave_up = threading.Event()
    guard = threading.Timer(60, lambda: (gave_up.set(), stop.set()))
    guard.start()
    return guard, gave_up


def _restart_soon(server: RtspServer | MjpegServer, errors: list[BaseException]) -> threading.Timer:
    """Start the stopped server again in a moment, so the source sees it gone first (its restart is the point).
    The caller cancels and joins the timer before the server's last stop, so no restarted server outlives it."""

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # reported by the test, not lost in a timer thread
            errors.append(exc)

    timer = threading.Timer(0.5, start)
    timer.start()
    return timer


def _read_through_a_restart(
    server: RtspServer | MjpegServer, src: ReconnectingSource, stop: threading.Event, n_after: int
) -> list[Frame]:
    """Stop the server and start it again; reads block through the outage and go on from the restarted server."""
    errors: list[BaseException] = []
    server.stop()
    timer = _restart_soon(server, errors)
    try:
        while src.reconnects == 0 and not stop.is_set():
            assert src.read() is not None or stop.is_set()
        after = _read(src, n_after)
    finally:
        timer.cancel()
        timer.join()
    assert not errors
    return after


@needs_gstreamer
def test_rtsp_frames_fps_resolution_and_stream_clock():
    with RtspServer(fps=15, width=96, height=64) as server:
        src = open_source(server.url)
        try:
            frames = _read(src, 40)
            info = src.describe()
        finally:
            src.close()
    assert all(f.image.shape == (64, 96, 3) for f in frames)
    assert (info.width, info.height) == (96, 64)
    # Measured on the RTP timestamps: the camera's rate, whatever this machine's load.
    assert info.fps == pytest.approx(15.0, abs=0.5)
    # Capture times come from the stream's clock, never from the future, in stream order.
    assert info.clock == "stream"
    stamps = [f.capture_ns for f in frames]
    assert all(s is not None for s in stamps) and stamps == sorted(stamps) and stamps[-1] <= time.time_ns()
    assert not np.array_equal(frames[0].image, frames[-1].image)  # a moving test pattern, not one frame
    assert src.reconnects == 0


@needs_gstreamer
def test_rtsp_server_restart_is_reconnected_and_counted():
    stop = threading.Event()
    with RtspServer() as server:
        src = open_source(server.url, reconnect_min=0.2, reconnect_max=1.0, stop=stop)
        guard, gave_up = _hang_guard(stop)
        try:
            _read(src, 10)
            after = _read_through_a_restart(server, src, stop, 10)
        finally:
            guard.cancel()
            src.close()
    assert not gave_up.is_set()
    assert src.reconnects == 1 and src.failures >= 1
    assert list(src.delays)[0] == 0.2  # the backoff started at its minimum
    assert all(f.image.shape == (64, 96, 3) and f.capture_ns is not None for f in after)


def test_http_mjpeg_frames_and_restart():
    stop = threading.Event()
    with MjpegServer(fps=20, width=80, height=60) as server:
        src = open_source(server.url, reconnect_min=0.2, reconnect_max=1.0, stop=stop)
        guard, gave_up = _hang_guard(stop)
        try:
            before = _read(src, 10)
            info = src.describe()
            after = _read_through_a_restart(server, src, stop, 5)
        finally:
            guard.cancel()
            src.close()
    assert not gave_up.is_set() and src.reconnects == 1
    assert all(f.image.shape == (60, 80, 3) for f in before + after)
    assert (info.width, info.height) == (80, 60) and info.fps is not None and info.fps > 0
    # MJPEG over HTTP carries no capture times (FFmpeg would invent 25-fps ones): frames are stamped when read.
    assert info.clock == "read" and all(f.capture_ns is None for f in before)
    # Live content: each JPEG is a new frame of the server's counter (its grey level steps by 7 per frame).
    levels = [int(f.image[0, 0, 0]) for f in before]
    assert len(set(levels)) > 1


@needs_gstreamer
def test_h264_mp4_file(tmp_path):
    clip = write_h264_mp4(tmp_path / "clip.mp4", frames=12, fps=10, width=64, height=48)
    src = open_source(f"file://{clip}")
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    info, count = src.describe(), len(src)
    src.close()
    assert len(frames) == 12 == count and [f.index for f in frames] == list(range(12))
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert (info.fps, info.width, info.height, info.clock) == (10.0, 64, 48, "read")
    assert all(f.capture_ns is None for f in frames)  # a clip's times are positions in it, not capture times
    assert frames[0].image.reshape(-1, 3).std(axis=0).max() > 30  # the SMPTE colour bars survived H.264


def test_stream_clock_anchors_on_the_least_delayed_frame():
    clock = StreamClock()
    t0 = 1_000_000_000_000
    # Two frames queued 200 ms before they were read, then one read as it arrived: the mapping tightens.
    assert clock.capture_ns(0.0, t0 + 200_000_000) == t0 + 200_000_000
    assert clock.capture_ns(100.0, t0 + 200_000_000) == t0 + 100_000_000 + 100_000_000  # offset now t0 + 100 ms
    assert clock.capture_ns(200.0, t0 + 210_000_000) == t0 + 210_000_000  # the anchor: 10 ms late
    assert clock.capture_ns(300.0, t0 + 400_000_000) == t0 + 310_000_000  # queued 90 ms: shows it
    # A restarted stream starts its clock again: the old anchor would date its frames in the past.
    assert clock.capture_ns(0.0, t0 + 900_000_000) == t0 + 900_000_000
    assert clock.capture_ns(float("nan"), t0) is None


def test_frame_rate_is_the_cameras_despite_bursts_and_gaps():
    rate = FrameRate(window=30)
    for t in [0.0, 0.0, 0.5, 1.0, 1.5]:  # FFmpeg's probe burst: frames handed out back to back
        rate.tick(t)
    for i in range(1, 30):
        if i != 12:  # one frame lost on the network
            rate.tick(1.5 + i * 1000 / 15)
    assert rate.fps() == 15.0


def test_missing_v4l2_device_is_one_line(tmp_path):
    if Path("/dev/video9").exists():
        pytest.skip("this machine has a /dev/video9; the test needs a device number that is absent")
    exe = Path(sys.executable).with_name("vitfleet")
    out = subprocess.run(
        [str(exe), "camera", "--broker", "127.0.0.1:1", "--uri", "/dev/video9", "--frames", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "/dev/video9 does not exist" in lines[0] and "ls /dev/video*" in lines[0]


@needs_gstreamer
def test_rtsp_camera_feeds_a_fleet_through_a_server_restart(broker, fleet_engines, tmp_path):  # noqa: F811
    errors: list[BaseException] = []
    timer: threading.Timer | None = None
    with RtspServer(fps=15) as server:
        fleet = Fleet(broker, fleet_engines, tmp_path, deadline_ms=300).start()
        try:
            node, thread = fleet.run_camera_in_background(server.url, fps=10, max_in_flight=2, drain=3.0)
            assert wait_until(lambda: node.counts["predictions"] >= 10, timeout=60)
            server.stop()
            timer = _restart_soon(server, errors)
            assert wait_until(lambda: node.source.reconnects == 1, timeout=60)
            answered = node.counts["predictions"]
            assert wait_until(lambda: node.counts["predictions"] >= answered + 10, timeout=60)
            node.stop()
            thread.join(timeout=30)
        finally:
            if timer is not None:  # no restarted server may outlive the test
                timer.cancel()
                timer.join()
            codes = fleet.stop()
    summary = node.result
    assert not errors and all(c == 0 for c in codes.values()), codes
    assert summary["ok"] and summary["lost"] == 0 and summary["admitted"] == summary["frames_sent"] >= 20
    assert summary["predictions"] == summary["admitted"]
    assert summary["source"]["reconnects"] == 1 and summary["source"]["clock"] == "stream"
    assert (summary["source"]["width"], summary["source"]["height"]) == (96, 64)
