"""Camera sources by URI: real files, folders and data sets; looping, pacing, reconnect with backoff;
the Jetson/Pi sources' wiring against fake modules (no such hardware here)."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from vitfleet.camera.jetson_source import gstreamer_pipeline
from vitfleet.camera.sources import (
    CameraError,
    FramePacer,
    LoopingSource,
    ReconnectingSource,
    SourceLost,
    open_source,
    open_spec,
)
from vitfleet.camera.uri import CameraUriError, parse_uri
from vitfleet.datasets import load_fashion_mnist


@pytest.mark.parametrize(
    "uri,scheme,target",
    [
        ("/dev/video0", "v4l2", "/dev/video0"),
        ("v4l2://1", "v4l2", "1"),
        ("csi://0", "csi", "0"),
        ("picam://", "picam", "0"),
        ("rtsp://cam.local:554/stream?x=1", "rtsp", "rtsp://cam.local:554/stream?x=1"),
        ("file://clip.mp4", "file", "clip.mp4"),
        ("dir://imgs/", "dir", "imgs/"),
        ("dataset://fashion-mnist/test?limit=5", "dataset", "fashion-mnist/test"),
        ("synthetic://", "synthetic", ""),
    ],
)
def test_uri_parsing(uri, scheme, target):
    spec = parse_uri(uri)
    assert (spec.scheme, spec.target) == (scheme, target)
    assert spec.live == (scheme in ("v4l2", "csi", "picam", "rtsp"))


@pytest.mark.parametrize(
    "uri,match",
    [
        ("", "empty"),
        ("clip.mp4", "no scheme"),
        ("ftp://x", "unknown camera scheme"),
        ("file://", "names no file"),
        ("dataset://", "names no dataset"),
    ],
)
def test_bad_uris_say_what_to_write(uri, match):
    with pytest.raises(CameraUriError, match=match):
        parse_uri(uri)


def test_bad_option_is_a_user_error():
    with pytest.raises(CameraUriError, match="limit='x' must be an integer"):
        open_source("dataset://fashion-mnist/test?limit=x")


def test_dataset_replay_carries_labels_in_order():
    test = load_fashion_mnist("test")
    src = open_source("dataset://fashion-mnist/test?start=10&limit=5")
    frames = [src.read() for _ in range(6)]
    assert frames[-1] is None and len(src) == 5
    for i, f in enumerate(frames[:5]):
        assert f.index == 10 + i and f.label == int(test.labels[10 + i])
        assert np.array_equal(f.image, test.images[10 + i])
    assert src.class_names[0] == "T-shirt/top"


def test_dataset_uri_needs_a_split():
    with pytest.raises(CameraUriError, match="dataset://<name>/<train|test>"):
        open_source("dataset://fashion-mnist")


def test_loop_restarts_a_finite_source():
    src = open_source("dataset://fashion-mnist/test?limit=3", loop=True)
    labels = [src.read().label for _ in range(7)]
    assert labels[:3] == labels[3:6] and labels[6] == labels[0]
    assert isinstance(src, LoopingSource) and src.loops == 2


def _write_video(path: Path, n: int, size=(32, 24)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.release()


def test_video_file_source(tmp_path):
    _write_video(tmp_path / "clip.avi", 4)
    src = open_source(f"file://{tmp_path / 'clip.avi'}")
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert len(frames) == 4 and frames[0].image.shape == (24, 32, 3)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert abs(int(frames[3].image.mean()) - 120) < 8  # MJPEG is lossy, the content is still ours


def test_still_image_and_folder_sources(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 9, 3), i * 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    still = open_source(f"file://{tmp_path / '1.png'}")
    assert still.read().image[0, 0, 0] == 10 and still.read() is None
    folder = open_source(f"dir://{tmp_path}")
    values = [folder.read().image[0, 0, 0] for _ in range(3)]
    assert values == [0, 10, 20] and folder.read() is None


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        open_source(f"file://{tmp_path / 'nope.mp4'}")
    with pytest.raises(CameraError, match="holds no images"):
        open_source(f"dir://{tmp_path}")


def test_synthetic_source_is_deterministic():
    a, b = open_source("synthetic://?size=16&channels=3&count=3"), open_source("synthetic://?size=16&channels=3")
    fa, fb = [a.read() for _ in range(3)], [b.read() for _ in range(3)]
    assert a.read() is None
    assert all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb))
    assert fa[0].image.shape == (16, 16, 3) and not np.array_equal(fa[0].image, fa[1].image)


def test_pacer_holds_the_frame_rate():
    pacer = FramePacer(100.0)
    t0 = time.monotonic()
    for _ in range(21):
        pacer.wait()
    elapsed = time.monotonic() - t0
    assert 0.17 < elapsed < 0.35


def test_reconnect_with_backoff_after_a_live_source_drops(tmp_path):
    clip = tmp_path / "clip.avi"
    _write_video(clip, 2)
    spec = parse_uri(f"file://{clip}")
    stop = threading.Event()
    src = ReconnectingSource(lambda: open_spec(spec), min_delay=0.02, max_delay=0.08, stop=stop)
    assert src.read().index == 0 and src.read().index == 1
    clip.unlink()  # the stream ends and cannot be reopened for a while
    back = {}

    def bring_back():
        _write_video(clip, 3)
        back["t"] = time.monotonic()

    threading.Timer(0.4, bring_back).start()
    frame = src.read()
    got_at = time.monotonic()
    assert frame is not None and frame.index == 0 and src.reconnects == 1
    # Backoff doubles from min_delay and is capped at max_delay, whatever the machine's load.
    delays = list(src.delays)
    assert len(delays) == src.failures >= 4  # four delays already show the doubling and the cap
    assert delays[:4] == [0.02, 0.04, 0.08, 0.08] and max(delays) == 0.08
    # Reopened on the first retry after the stream came back: within one capped delay (plus scheduling).
    assert got_at - back["t"] < 0.08 + 0.25
    stop.set()
    assert src.read() is None  # a stopped source ends instead of retrying forever
    src.close()


def test_reconnect_is_bounded_by_stop(tmp_path):
    spec = parse_uri("rtsp://127.0.0.1:1/none")

    def opener():
        raise SourceLost("stream down")

    stop = threading.Event()
    src = ReconnectingSource(opener, min_delay=0.01, max_delay=0.02, stop=stop)
    threading.Timer(0.2, stop.set).start()
    assert src.read() is None and src.failures >= 3
    assert spec.live


def test_gstreamer_pipeline_uses_nvargus():
    p = gstreamer_pipeline(1, 1280, 720, 30)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ") and "width=1280, height=720, framerate=30/1" in p
    assert p.endswith("appsink drop=true max-buffers=1")


def test_csi_through_jetson_utils_wiring(monkeypatch):
    """Fake jetson_utils (no Jetson here): checks the calls and the RGB->BGR conversion."""
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    calls = []

    class VideoSource:
        def __init__(self, uri):
            calls.append(uri)

        def Capture(self, format, timeout):  # noqa: N802 - jetson_utils API
            return "cuda-image"

        def IsStreaming(self):  # noqa: N802
            return True

        def Close(self):  # noqa: N802
            calls.append("closed")

    fake = types.SimpleNamespace(
        videoSource=VideoSource, cudaToNumpy=lambda img: rgb, cudaDeviceSynchronize=lambda: None
    )
    monkeypatch.setitem(sys.modules, "jetson_utils", fake)
    src = open_source("csi://0")
    frame = src.read()
    assert calls == ["csi://0"] and frame.image[0, 0].tolist() == [0, 0, 200]  # BGR
    src.close()
    assert calls[-1] == "closed"


def test_picamera2_wiring(monkeypatch):
    """Fake picamera2 (no Pi camera here): checks configuration and capture."""
    seen = {}

    class Picamera2:
        def __init__(self, index):
            seen["index"] = index

        def create_video_configuration(self, main):
            return {"main": main}

        def configure(self, config):
            seen["config"] = config

        def start(self):
            seen["started"] = True

        def capture_array(self, stream):
            return np.full((480, 640, 3), 7, np.uint8)

        def stop(self):
            seen["stopped"] = True

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    src = open_source("picam://1?width=640&height=480")
    frame = src.read()
    assert seen["index"] == 1 and seen["config"]["main"] == {"size": (640, 480), "format": "RGB888"}
    assert frame.image.shape == (480, 640, 3) and frame.image[0, 0, 0] == 7
    src.close()
    assert seen["stopped"]


def test_missing_picamera2_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="python3-picamera2"):
        open_spec(parse_uri("picam://0"))
