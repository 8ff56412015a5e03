"""Bring the lab's arm64 boards (and the host's hub sshd) up, down, or restart one: what `make lab-boards` runs.

Layout under the lab folder (default runs/lab):
  ssh/id_ed25519        the key deploy logs in with (docs/lab-fleet.yaml `ssh.key`)
  ssh/known_hosts       every board's host key, written as each board is made (`ssh.known_hosts`)
  boards/<name>/        root/ (the board's own file system), console.log, nspawn.pid
  hub-sshd/             the host's private sshd (the hub board of the lab fleet)
  lab.json              which boards exist
Boards are named arm1..armN; board i lives at 10.231.i.2 (lab/netns.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vitfleet.lab.boards import LabBoard, read_lab, write_lab
from vitfleet.lab.errors import LabError
from vitfleet.lab.host_sshd import start_host_sshd, stop_host_sshd
from vitfleet.lab.netns import require_netns_tools
from vitfleet.lab.rootfs import ensure_rootfs

MAX_BOARDS = 16


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def hub(self) -> Path:
        return self.root / "hub-sshd"

    def board(self, index: int) -> LabBoard:
        name = f"arm{index}"
        return LabBoard(name, index, self.root / "boards" / name)


def lab_public_key(paths: LabPaths) -> str:
    if not paths.key.exists():
        paths.key.parent.mkdir(parents=True, exist_ok=True)
        paths.key.parent.chmod(0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vitfleet-lab", "-f", str(paths.key)],
            check=True,
            capture_output=True,
        )
    return paths.key.with_suffix(".pub").read_text().strip()


def _host_key(board: LabBoard) -> str:
    kind, key = (board.root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"{board.address} {kind} {key}"


def bring_up(lab_dir: Path, n: int, fresh: bool = False, echo: Callable[[str], None] = print) -> list[LabBoard]:
    """N booted boards answering SSH, plus the hub's sshd; existing boards keep their install unless `fresh`."""
    if not 1 <= n <= MAX_BOARDS:
        raise LabError(f"--n {n} is out of range; the lab runs 1 to {MAX_BOARDS} boards")
    require_netns_tools()
    lab_dir = lab_dir.resolve()  # nspawn's command line names the root: one spelling, wherever we run from
    paths = LabPaths(lab_dir)
    existing = read_lab(lab_dir)
    for old in existing:
        if old.index > n or fresh:
            echo(f"{old.name}: {old.stop()}")
    template = ensure_rootfs(echo=echo)
    public_key = lab_public_key(paths)
    boards = [paths.board(i) for i in range(1, n + 1)]
    known = []
    for board in boards:
        if fresh or not (board.root / "etc" / "hostname").exists():
            echo(f"{board.name}: new root file system from {template.name}")
            board.create(template, public_key)
        known.append(_host_key(board))
        if not board.running():
            board.start()
            echo(f"{board.name}: booting (systemd under qemu-aarch64) at {board.address}")
    known.append(start_host_sshd(paths.hub, public_key))
    paths.known_hosts.write_text("\n".join(known) + "\n")
    write_lab(lab_dir, boards)
    for board in boards:
        took = board.wait_ssh()
        echo(f"{board.name}: sshd answers at {board.address} ({took:.0f} s)")
    return boards


def stop(lab_dir: Path, names: list[str] | None = None, echo: Callable[[str], None] = print) -> None:
    lab_dir = lab_dir.resolve()
    boards = read_lab(lab_dir)
    unknown = sorted(set(names or []) - {b.name for b in boards})
    if unknown:
        raise LabError(
            f"no lab board named {', '.join(unknown)}; the lab has: "
            f"{', '.join(b.name for b in boards) or 'none (run: make lab-boards)'}"
        )
    for board in boards:
        if not names or board.name in names:
            echo(f"{board.name}: {board.stop()}")
            if not names:
                board.link.down()
    if not names:
        stop_host_sshd(LabPaths(lab_dir).hub)


def restart(lab_dir: Path, name: str, hard: bool = False, echo: Callable[[str], None] = print) -> float:
    """Reboot one board (power off and on; `hard`: pull the plug instead); seconds until its sshd answers."""
    matches = [b for b in read_lab(lab_dir.resolve()) if b.name == name]
    if not matches:
        raise LabError(f"no lab board named {name}; run: vitfleet lab status")
    board = matches[0]
    if hard:
        board.kill()
        echo(f"{board.name}: plug pulled")
    else:
        echo(f"{board.name}: {board.stop()}")
    board.start()
    return board.wait_ssh()
