"""Start a private mosquitto on a free loopback port (demo, tests, bench).

No systemd is assumed: `mosquitto -c <conf>` as a child process, with the two
settings the fleet depends on (`set_tcp_nodelay true`, a raised
`max_queued_messages`), stopped with SIGTERM and restarted on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from vitfleet.errors import UserError
from vitfleet.fleet_config import BrokerConfig


class BrokerStartError(UserError):
    """mosquitto is missing or did not come up."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as mosquitto does: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def broker_conf(port: int, host: str, log_file: Path, max_queued: int) -> str:
    return "\n".join(
        [
            f"listener {port} {host}",
            "allow_anonymous true",
            # Without it the broker's small writes wait for delayed ACKs (~40 ms a hop).
            "set_tcp_nodelay true",
            # The default 1000 drops most of a burst towards a busy subscriber (the aggregator).
            f"max_queued_messages {max_queued}",
            "persistence false",
            f"log_dest file {log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]
    )


class LocalBroker:
    def __init__(
        self, work_dir: Path | None = None, port: int | None = None, host: str = "127.0.0.1", max_queued: int = 100000
    ) -> None:
        exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)
        if exe is None:
            raise BrokerStartError("mosquitto is not installed; run `make setup` (or apt-get install mosquitto)")
        self.exe = exe
        self.host = host
        self.port = port or free_port(host)
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="vitfleet-broker-")
        self.work_dir = Path(work_dir or self._tmp.name)  # type: ignore[union-attr]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.work_dir / "mosquitto.conf"
        self.log_path = self.work_dir / "mosquitto.log"
        self.conf_path.write_text(broker_conf(self.port, host, self.log_path, max_queued))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> BrokerConfig:
        return BrokerConfig(host=self.host, port=self.port)

    def start(self, timeout: float = 5.0) -> LocalBroker:
        if not port_is_free(self.host, self.port):
            # Checked first: otherwise the readiness probe below would happily connect to the other listener.
            raise BrokerStartError(
                f"port {self.port} on {self.host} is already in use; pick another port or stop the process holding it"
            )
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else "").strip()
                tail = self.log_path.read_text()[-400:] if self.log_path.exists() else ""
                raise BrokerStartError(
                    f"mosquitto exited at start (code {self.proc.returncode}) on port "
                    f"{self.port}: {err or tail or 'no output'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerStartError(
            f"mosquitto did not listen on {self.host}:{self.port} within {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
