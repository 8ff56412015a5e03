"""Lab boards: arm64 Debian with systemd as PID 1 and sshd, each in its own network namespace, under qemu.

A board is `systemd-nspawn --boot` on its own root copy, joined to the namespace of its `BoardLink`. The host runs
no systemd here, hence `--register=no --keep-unit`. Stopping a board powers it off from inside (`systemctl
poweroff` entered into its namespaces): nspawn's own stop signal (SIGRTMIN+3) is renumbered by qemu-user on the
way to the emulated systemd, which then enters rescue mode instead of halting. Its root is kept across a stop, as
an SD card keeps a Pi's install across a reboot.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vitfleet.lab.board_root import make_board_root
from vitfleet.lab.emulation import ensure_arm64_emulation
from vitfleet.lab.errors import LabError
from vitfleet.lab.netns import BoardLink, ensure_host_lab_addr, require_netns_tools

BOOT_TIMEOUT_S = 180.0  # ~30 s under qemu on an idle machine; a loaded one takes several times that


@dataclass(frozen=True)
class LabBoard:
    name: str
    index: int
    home: Path  # <lab dir>/boards/<name>: root/, console.log, nspawn.pid

    @property
    def link(self) -> BoardLink:
        return BoardLink(self.name, self.index)

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def address(self) -> str:
        return self.link.board_addr

    @property
    def pid_file(self) -> Path:
        return self.home / "nspawn.pid"

    def nspawn_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        # The machine name, not the root's path: that may be spelled relative to wherever the lab was started.
        return (
            pid
            if cmdline and cmdline[0].endswith(b"systemd-nspawn") and f"--machine={self.name}".encode() in cmdline
            else None
        )

    def running(self) -> bool:
        return self.nspawn_pid() is not None

    def create(self, template: Path, authorized_key: str) -> str:
        """A fresh root from the template (the board's install is lost); returns its SSH host key line."""
        if self.running():
            raise LabError(f"lab board {self.name} is running; stop it first: vitfleet lab stop {self.name}")
        return make_board_root(template, self.root, self.name, authorized_key)

    def start(self) -> None:
        if self.running():
            return
        if not self.root.exists():
            raise LabError(f"lab board {self.name} has no root file system; run: vitfleet lab boards")
        require_netns_tools()
        ensure_arm64_emulation()  # a registration does not survive the host's reboot; the cached root does
        ensure_host_lab_addr()
        self.link.up()
        argv = [
            "systemd-nspawn",
            "--quiet",
            "-D",
            str(self.root),
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--machine={self.name}",
            f"--network-namespace-path={self.link.ns_path}",
            "--console=read-only",
        ]
        code = None
        for attempt in range(4):
            with open(self.home / "console.log", "ab") as console:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.pid_file.write_text(str(proc.pid))
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                return  # booting: nspawn stays up as long as the board does
            # Right after a power-off the previous nspawn may still hold the root (seen in a reboot test):
            # give it time, as a board's power supply is given a moment between off and on.
            time.sleep(2.0 * (attempt + 1))
        self.pid_file.unlink(missing_ok=True)
        raise LabError(
            f"lab board {self.name} would not boot (systemd-nspawn exited with {code} four times); see "
            f"{self.home / 'console.log'}"
        )

    def wait_ssh(self, timeout: float = BOOT_TIMEOUT_S) -> float:
        """Seconds until the board's sshd accepts connections."""
        start = time.monotonic()
        while True:
            try:
                socket.create_connection((self.address, 22), timeout=1.0).close()
                return time.monotonic() - start
            except OSError:
                if not self.running():
                    raise LabError(
                        f"lab board {self.name} stopped while booting; see {self.home / 'console.log'}"
                    ) from None
                if time.monotonic() - start > timeout:
                    raise LabError(
                        f"lab board {self.name} did not answer on {self.address}:22 within "
                        f"{timeout:.0f} s; see {self.home / 'console.log'}"
                    ) from None
                time.sleep(0.5)

    def _container_init(self, nspawn: int) -> int | None:
        try:
            children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def stop(self, timeout: float = 90.0) -> str:
        """Power the board off (clean shutdown); pull the plug if it does not go within `timeout`."""
        pid = self.nspawn_pid()
        if pid is None:
            return "not running"
        init = self._container_init(pid)
        if init is not None:
            subprocess.run(
                ["nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "--", "/bin/systemctl", "poweroff"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            time.sleep(0.5)
        if not self.running():
            self.pid_file.unlink(missing_ok=True)
            return "powered off"
        self.kill()
        return "killed (did not power off in time)"

    def kill(self) -> None:
        """Pull the plug: no shutdown at all."""
        pid = self.nspawn_pid()
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> dict:
        return {
            "name": self.name,
            "address": self.address,
            "running": self.running(),
            "root": str(self.root),
            **({"pid": self.nspawn_pid()} if self.running() else {}),
        }


@dataclass(frozen=True)
class LabRecord:
    name: str
    index: int


def read_lab(lab_dir: Path) -> list[LabBoard]:
    path = lab_dir / "lab.json"
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())["boards"]
        return [LabBoard(r["name"], int(r["index"]), lab_dir / "boards" / r["name"]) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        raise LabError(f"{path} is damaged; stop what runs (vitfleet lab stop) and delete {lab_dir}") from None


def write_lab(lab_dir: Path, boards: list[LabBoard]) -> None:
    lab_dir.mkdir(parents=True, exist_ok=True)
    rows = [asdict(LabRecord(b.name, b.index)) for b in boards]
    (lab_dir / "lab.json").write_text(json.dumps({"boards": rows}, indent=1) + "\n")
