"""The web view's HTTP server: the standard library's ThreadingHTTPServer, one thread per request.

Routes: `/` the page, `/static/<file>` its assets (packaged with vitfleet, nothing from a CDN: boards are
offline), `/api/state` the page's state as JSON, `/stream.mjpg` the latest frame with the prediction drawn on it
(multipart/x-mixed-replace; `?camera=NAME` for one camera's, otherwise the fleet's latest answer of any camera),
`/metrics` Prometheus. Bound to loopback unless told otherwise; beyond loopback
every request needs the fleet's credentials (agent/web/auth.py) or the server refuses to start.

Nothing here may take its host process down (the aggregator can serve the page): request errors are answered
or logged, never raised, and the server runs in daemon threads.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from vitfleet.agent.web.auth import Credentials, fleet_credentials
from vitfleet.agent.web.frame_overlay import render
from vitfleet.agent.web.metrics import CONTENT_TYPE as METRICS_TYPE
from vitfleet.agent.web.metrics import ViewMetrics
from vitfleet.agent.web.state import STREAM_PATH, WebState, valid_camera_name
from vitfleet.errors import UserError
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.web")

STREAM_MAX_FPS = 15.0  # the page needs no more; a board's CPU is better spent on inference
STREAM_KEEPALIVE_S = 2.0  # resend the picture this often when nothing changes (detects closed clients)
BOUNDARY = "vitfleetframe"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Only our own origin: a page that tried to load anything from elsewhere would be a bug (boards are offline).
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"


class WebViewError(UserError):
    """A --http value, address or port the view cannot serve on."""


def parse_http(text: str) -> tuple[str, int]:
    """HOST:PORT (or [v6]:PORT) -> (host, port); port 0 picks a free one."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise WebViewError(f"--http {text!r} must be HOST:PORT, e.g. 127.0.0.1:8080 (port 0 picks a free one)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere: treat it as reachable from outside


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's assets, read once from the installed package (they ship in the wheel)."""
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("vitfleet.agent.web").joinpath("static").iterdir():
        suffix = Path(entry.name).suffix
        if entry.is_file() and suffix in TYPES:
            files[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # open MJPEG streams must not hold up shutdown
    allow_reuse_address = True
    view: WebView

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser closing a stream mid-write is routine; anything else is logged, never raised.
        log.debug("request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "vitfleet-view"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        view = self.server.view
        try:
            if view.credentials and not view.credentials.check(self.headers.get("Authorization")):
                self._send(
                    401,
                    b"the fleet's MQTT credentials are needed\n",
                    "text/plain; charset=utf-8",
                    {"WWW-Authenticate": f'Basic realm="vitfleet {view.state.fleet_name}", charset="UTF-8"'},
                )
                return
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._asset("index.html")
            elif path.startswith("/static/"):
                self._asset(path[len("/static/") :])
            elif path == "/api/state":
                self._send(200, view.state.snapshot().model_dump_json().encode(), "application/json")
            elif path == "/metrics":
                self._send(200, view.metrics.render(), METRICS_TYPE)
            elif path == STREAM_PATH:
                self._stream_route()
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away
        except Exception:  # noqa: BLE001 - the page must never take its host process down
            log.exception("web view: %s failed", self.path)
            try:
                self._send(500, b"internal error; see the view's log\n", "text/plain; charset=utf-8")
            except OSError:
                pass

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _asset(self, name: str) -> None:
        found = self.server.view.static.get(name)  # a fixed table: no path ever reaches the file system
        if found is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        self._send(200, found[0], found[1])

    def _stream_route(self) -> None:
        """`?camera=NAME`: that camera's stream, when the view knows the camera; none: the fleet's."""
        query = urllib.parse.parse_qs(self.path.partition("?")[2])
        names = query.get("camera")
        if names is None:
            self._stream(None)
            return
        view = self.server.view
        name = names[0]
        if len(names) == 1 and valid_camera_name(name) and view.state.has_camera(name):
            self._stream(name)
            return
        # A name that is not a camera name is not echoed: the message stays one line of known characters.
        known = ", ".join(view.state.camera_names()) or "none yet"
        if len(names) > 1:
            what = "one camera at a time"
        elif valid_camera_name(name):
            what = f"no camera {name!r} in fleet {view.state.fleet_name}"
        else:
            what = f"not a camera name (letters, digits, _ and - only) in fleet {view.state.fleet_name}"
        self._send(404, f"{what}; its cameras: {known}\n".encode(), "text/plain; charset=utf-8")

    def _stream(self, camera: str | None) -> None:
        view = self.server.view
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with view.state.watching_frames():
            version = -1
            while not view.stopping.is_set():
                started = time.monotonic()
                jpeg, version = view.picture(camera, version, STREAM_KEEPALIVE_S)
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                self.wfile.flush()
                time.sleep(max(0.0, 1.0 / STREAM_MAX_FPS - (time.monotonic() - started)))


class WebView:
    """The fleet's state (one MQTT subscriber), its metrics and the HTTP server, started and stopped together."""

    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        host: str,
        port: int,
        boards: list[str] | None = None,
        credentials: Credentials | None = None,
        cameras: list[str] | None = None,
        state: WebState | None = None,
    ) -> None:
        if not is_loopback(host) and not credentials:
            raise WebViewError(
                f"--http {host}:{port} would serve the fleet beyond this machine without a password; run `make certs "
                "FLEET=fleet.yaml` (the page then asks for a fleet MQTT user), set broker.username and "
                "broker.password_file in fleet.yaml, pass --http-passwd FILE, or bind to 127.0.0.1"
            )
        self.metrics = ViewMetrics()
        # One reader of the fleet's topics per process: the one-machine fleet hands over the state it already runs.
        self._owns_state = state is None
        self.state = state or WebState(broker, fleet_name, boards, cameras=cameras)
        self.state.on_prediction = self.metrics.observe
        self.metrics.attach(self.state)
        self.credentials = credentials if credentials else None
        self.static = _static_files()
        self.stopping = threading.Event()
        self._picture_lock = threading.Lock()
        # camera (None: the fleet's stream) -> (version, JPEG); only cameras the view tracks: bounded
        self._pictures: dict[str | None, tuple[int, bytes]] = {}
        self.httpd = self._bind(host, port)
        self.httpd.view = self
        self._thread: threading.Thread | None = None

    @staticmethod
    def _bind(host: str, port: int) -> _Server:
        cls = _Server6 if ":" in host else _Server
        try:
            return cls((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WebViewError(
                    f"port {port} on {host} is already in use; pick another with --http "
                    f"{host}:PORT (port 0 picks a free one) or stop the process holding it"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise WebViewError(
                    f"not allowed to listen on {host}:{port} (ports below 1024 need root); "
                    "use a port above 1024, e.g. --http 127.0.0.1:8080"
                ) from None
            raise WebViewError(
                f"cannot listen on {host}:{port} ({exc.strerror}); --http needs an address of this "
                "machine, e.g. 127.0.0.1:8080 or 0.0.0.0:8080"
            ) from None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in str(host) else host)
        return f"http://{shown}:{port}/"

    def picture(self, camera: str | None, seen_version: int, timeout: float) -> tuple[bytes, int]:
        """A stream's next JPEG (one camera's, or the fleet's for None): waits (bounded) for a new frame or
        prediction; rendered once per change, shared by every open stream of that camera."""
        st = self.state
        version = st.wait_picture(camera, seen_version, timeout, self.stopping)
        with self._picture_lock:
            cached = self._pictures.get(camera)
            if cached is None or cached[0] != version:
                frame, pred, same = st.frame_for_display(camera)
                # The name on the picture only where it tells something: a fleet with several cameras.
                label = camera if camera is not None and len(st.camera_names()) > 1 else None
                cached = self._pictures[camera] = (version, render(frame, pred, same, camera=label))
            return cached[1], version

    def start(self) -> WebView:
        if self._owns_state:
            self.state.start()
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.25}, name="web-http", daemon=True
        )
        self._thread.start()
        log.info("web view on %s", self.url)
        return self

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        with self.state.frames_changed:
            self.state.frames_changed.notify_all()
        try:
            self.httpd.shutdown()
            self.httpd.server_close()
        finally:
            if self._owns_state:
                self.state.stop()


def open_view(
    broker: BrokerConfig,
    fleet_name: str,
    http: str,
    boards: list[str] | None = None,
    passwd_file: Path | None = None,
    cameras: list[str] | None = None,
    state: WebState | None = None,
) -> WebView:
    """A WebView for `--http HOST:PORT`: loopback as is, beyond loopback only with the fleet's credentials.
    `cameras`: the fleet file's camera names in order (FleetConfig.camera_names()); without them the view learns
    the cameras from the fleet's messages."""
    host, port = parse_http(http)
    creds = None if is_loopback(host) else fleet_credentials(broker, fleet_name, passwd_file)
    return WebView(broker, fleet_name, host, port, boards, creds, cameras, state)
