"""A real OpenSSH server on loopback for the deploy tests (Debian's openssh-server, run as root).

Started on a free port with a throw-away host key, a throw-away client key and a custom
sshd_config (`sshd -f cfg -D -e`, PidFile, AuthorizedKeysFile pointing at a temp file,
StrictModes no). Boards are separate install directories reached through it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vitfleet.lab.host_sshd import sshd_config

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LoopbackSshd:
    port: int
    client_key: Path
    known_hosts: Path
    log: Path


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def loopback_sshd(tmp_path_factory) -> Iterator[LoopbackSshd]:
    if os.geteuid() != 0 or not Path(SSHD).exists() or shutil.which("rsync") is None:
        pytest.fail("the deploy tests need root, openssh-server and rsync (make setup installs them)")
    root = tmp_path_factory.mktemp("sshd")
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = free_port()
    config = root / "sshd_config"
    config.write_text(sshd_config(port, "127.0.0.1", root / "host_key", root / "sshd.pid", root / "authorized_keys"))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    log = root / "sshd.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([SSHD, "-f", str(config), "-D", "-e"], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text()}") from None
            time.sleep(0.05)
    try:
        yield LoopbackSshd(port, root / "client_key", root / "known_hosts", log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
