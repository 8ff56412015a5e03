"""The host as the lab fleet's hub: an OpenSSH server on the host's lab address, so `make deploy` reaches the host
(broker, aggregator, camera) the same way it reaches every board.

A private sshd (its own config, host key and port, root with the lab's key only), not the machine's own: the lab
changes nothing of the host's SSH setup and stops with the lab.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from vitfleet.lab.errors import LabError
from vitfleet.lab.netns import HOST_LAB_ADDR, ensure_host_lab_addr

SSHD = Path("/usr/sbin/sshd")
HUB_SSH_PORT = 2222


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def sshd_config(port: int, address: str, host_key: Path, pid_file: Path, authorized_keys: Path) -> str:
    """A private sshd's config: key logins only, one authorized_keys file, nothing of the machine's own setup."""
    return f"""Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 50
"""


def start_host_sshd(home: Path, authorized_key: str) -> str:
    """Start (or keep) the hub's sshd; returns its known_hosts line."""
    if not SSHD.exists():
        raise LabError("openssh-server is not installed on this machine; run: apt-get install -y openssh-server")
    home.mkdir(parents=True, exist_ok=True)
    host_key = home / "host_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@lab-hub", "-f", str(host_key)],
            check=True,
            capture_output=True,
        )
    (home / "authorized_keys").write_text(authorized_key.strip() + "\n")
    known = (
        f"[{HOST_LAB_ADDR}]:{HUB_SSH_PORT} {(home / 'host_key.pub').read_text().split(' ')[0]} "
        f"{(home / 'host_key.pub').read_text().split(' ')[1]}"
    )
    pid_file = home / "sshd.pid"
    if _alive(pid_file):
        return known
    ensure_host_lab_addr()
    config = home / "sshd_config"
    config.write_text(sshd_config(HUB_SSH_PORT, HOST_LAB_ADDR, host_key, pid_file, home / "authorized_keys"))
    Path("/run/sshd").mkdir(exist_ok=True)  # the privilege separation directory sshd insists on
    with open(home / "sshd.log", "ab") as log:
        subprocess.Popen(
            [str(SSHD), "-f", str(config), "-D", "-e"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((HOST_LAB_ADDR, HUB_SSH_PORT), timeout=0.3).close()
            return known
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"the hub's sshd did not start; see {home / 'sshd.log'}") from None
            time.sleep(0.1)


def stop_host_sshd(home: Path) -> None:
    pid = _alive(home / "sshd.pid")
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
