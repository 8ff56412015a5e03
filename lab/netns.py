"""A board's own network: a network namespace joined to the host by a veth pair, one /30 per board.

The host end gets 10.231.<index>.1 and the board end 10.231.<index>.2, so the board reaches the host's broker at
the host end's address and the host reaches the board's sshd at the board end's. Nothing routes beyond the pair:
a lab board reaches this machine and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vitfleet.lab.errors import LabError

NETNS_DIR = Path("/run/netns")
# The host's one address for every lab board (the broker, the hub's sshd): on the host's loopback interface, reached
# from each namespace through its veth pair, so a fleet file names one broker host for all boards.
HOST_LAB_ADDR = "10.231.0.1"


def ensure_host_lab_addr() -> None:
    done = _run(["ip", "addr", "replace", f"{HOST_LAB_ADDR}/32", "dev", "lo"])
    if done.returncode != 0:
        raise LabError(f"could not give the host its lab address {HOST_LAB_ADDR} ({done.stderr.strip()}); run as root")


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def require_netns_tools() -> None:
    """Namespaces need root and iproute2; say which is missing instead of failing on the first `ip` call."""
    import os

    if os.geteuid() != 0:
        raise LabError("lab boards need root (network namespaces, cgroups, systemd-nspawn); run as root")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise LabError(f"`{tool}` is not installed; run: apt-get install -y iproute2")


@dataclass(frozen=True)
class BoardLink:
    """The namespace `ns` of one lab board and the veth pair to it."""

    board: str
    index: int  # 1..250, unique per board on this machine

    @property
    def ns(self) -> str:
        return f"vitfleet-lab-{self.board}"

    @property
    def host_if(self) -> str:
        return f"vfl{self.index}h"  # interface names are at most 15 bytes

    @property
    def board_if(self) -> str:
        return f"vfl{self.index}b"

    @property
    def host_addr(self) -> str:
        return f"10.231.{self.index}.1"

    @property
    def board_addr(self) -> str:
        return f"10.231.{self.index}.2"

    @property
    def ns_path(self) -> Path:
        return NETNS_DIR / self.ns

    def exists(self) -> bool:
        return self.ns_path.exists()

    def exec_argv(self, argv: list[str]) -> list[str]:
        """`argv` run inside the board's namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def up(self) -> None:
        """Create the namespace and the pair (idempotent: an existing, working link is kept)."""
        if not 1 <= self.index <= 250:
            raise LabError(f"lab board index {self.index} is out of range; use 1..250")
        if self.exists() and _run(["ip", "link", "show", self.host_if]).returncode == 0:
            return
        self.down()
        steps = [
            ["ip", "netns", "add", self.ns],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.board_if],
            ["ip", "link", "set", self.board_if, "netns", self.ns],
            ["ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            self.exec_argv(["ip", "addr", "add", f"{self.board_addr}/30", "dev", self.board_if]),
            self.exec_argv(["ip", "link", "set", self.board_if, "up"]),
            self.exec_argv(["ip", "link", "set", "lo", "up"]),
            # Everything else goes to the host: its lab address (HOST_LAB_ADDR, one for every board) answers there.
            self.exec_argv(["ip", "route", "add", "default", "via", self.host_addr]),
        ]
        for step in steps:
            done = _run(step)
            if done.returncode != 0:
                self.down()
                raise LabError(
                    f"could not build the network of lab board {self.board} "
                    f"(`{' '.join(step)}`: {done.stderr.strip()}); is this a kernel with network "
                    "namespaces and veth, and are you root?"
                )

    def down(self) -> None:
        _run(["ip", "link", "del", self.host_if])
        if self.exists():
            _run(["ip", "netns", "del", self.ns])
