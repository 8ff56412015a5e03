"""Real stream servers for the camera tests: Debian's GStreamer RTSP server (a /usr/bin/python3 subprocess that
sees python3-gi), an HTTP MJPEG server (multipart/x-mixed-replace, in a thread), and H.264 MP4 files written by
GStreamer's x264enc (OpenCV's bundled FFmpeg has no H.264 encoder)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

GST_TOOL = Path(__file__).with_name("gst_stream_tool.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python: python3-gi is not in the venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gstreamer_missing() -> str | None:
    """Why the GStreamer servers cannot run here (the apt packages `make setup` installs), or None."""
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay', 'mp4mux', 'h264parse') "
        "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
    )
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run ({exc}); `make setup` installs python3-gi"
    if out.returncode != 0:
        return (
            f"python3-gi/GstRtspServer unavailable ({out.stderr.strip().splitlines()[-1:]}); `make setup` installs "
            "gir1.2-gst-rtsp-server-1.0"
        )
    if out.stdout.strip():
        return f"GStreamer elements missing: {out.stdout.strip()}; `make setup` installs gstreamer1.0-plugins-*"
    return None


_S = TypeVar("_S", bound="_Server")  # typing.Self is 3.11+, the kit supports 3.10


class _Server:
    """start()/stop() that the tests call around a restart, and a context manager that stops it in any case."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RtspServer(_Server):
    """videotestsrc → x264enc → RTSP on 127.0.0.1:<port>/cam; stop() and start() again on the same port restart it."""

    def __init__(self, fps: int = 15, width: int = 96, height: int = 64) -> None:
        self.port = free_port()
        self.fps, self.width, self.height = fps, width, height
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(GST_TOOL),
                "rtsp",
                str(self.port),
                "cam",
                str(self.fps),
                str(self.width),
                str(self.height),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # blocks until the server listens (or dies)
        if line.strip() != "ready":
            self._proc.wait(timeout=10)
            raise RuntimeError(f"RTSP server did not start: {self._proc.stderr.read() if self._proc.stderr else ''}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None


def write_h264_mp4(path: Path, frames: int, fps: int = 10, width: int = 64, height: int = 48) -> Path:
    subprocess.run(
        [SYSTEM_PYTHON, str(GST_TOOL), "mp4", str(path), str(frames), str(fps), str(width), str(height)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


class MjpegServer(_Server):
    """An IP-camera-style HTTP MJPEG stream: one multipart/x-mixed-replace response of JPEG frames at `fps`,
    a frame counter burnt into each, on 127.0.0.1:<port>/video. restart() drops every client and listens again."""

    BOUNDARY = "vitfleetframe"

    def __init__(self, fps: float = 20.0, width: int = 80, height: int = 60) -> None:
        self.port = free_port()
        self.fps, self.width, self.height = fps, width, height
        self.url = f"http://127.0.0.1:{self.port}/video"
        self.frames_sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def jpeg(self, i: int) -> bytes:
        image = np.full((self.height, self.width, 3), (i * 7) % 256, np.uint8)
        cv2.putText(image, str(i), (2, self.height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        ok, data = cv2.imencode(".jpg", image)
        assert ok
        return data.tobytes()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest's output for failures
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={owner.BOUNDARY}")
                self.end_headers()
                period, i = 1.0 / owner.fps, 0
                try:
                    while not owner._closing.is_set():
                        data = owner.jpeg(i)
                        self.wfile.write(
                            f"--{owner.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        owner.frames_sent += 1
                        i += 1
                        time.sleep(period)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away

        return Handler

    def start(self) -> None:
        self._closing.clear()
        # HTTPServer sets SO_REUSEADDR, so a restart binds the same port right away.
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._closing.set()  # ends the streaming responses, so clients see the stream drop
        self._server.shutdown()
        self._server.server_close()
        self._server = None
