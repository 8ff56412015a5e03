"""The coordinator's engine server: agents that must take over a part fetch its engine file here over HTTP.

Only the part engines listed in the manifest are served (GET /engines/<file>), nothing else of the disk: the
name must match a manifest entry exactly, so no path can escape the folder. The agent checks the bytes against
the sha256 of its own copy of the manifest before it writes or loads them (agent/engine_fetch.py), so this
server needs no integrity of its own; it is plain HTTP on the aggregator board's address. Daemon threads:
nothing here may take the aggregator down.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vitfleet.engines.runtime.manifest import read_manifest
from vitfleet.errors import UserError

log = logging.getLogger("vitfleet.engine_server")

PREFIX = "/engines/"


class EngineServerError(UserError):
    """The engine server cannot bind its address."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    files: dict[str, Path]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("engine request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "vitfleet-engines"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        file = self.server.files.get(path[len(PREFIX) :]) if path.startswith(PREFIX) else None
        if file is None or not file.exists():
            body = b"no such engine\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class EngineServer:
    def __init__(self, engines_dir: Path, host: str, port: int = 0) -> None:
        manifest = read_manifest(engines_dir)
        files = {e.file: Path(engines_dir) / e.file for e in manifest.entries if e.role == "part"}
        try:
            self.server = _Server((host, port), _Handler)
        except OSError as exc:
            raise EngineServerError(
                f"cannot serve engines on {host}:{port} ({exc.strerror}); set "
                "aggregator.engine_port to a free port, or aggregator.serve_engines: false "
                "when every board has every engine"
            ) from None
        self.server.files = files
        self.host = host
        self._thread = threading.Thread(target=self.server.serve_forever, name="engine-server", daemon=True)

    @property
    def url(self) -> str:
        """The base URL agents prepend to a manifest file name (announced in the plan)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.server_address[1]}{PREFIX}"

    def start(self) -> EngineServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
