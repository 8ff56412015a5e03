"""How deploy reaches a board: ssh and rsync command lines (keys only, never passwords).

BatchMode=yes makes ssh fail instead of prompting, so a board without our key is reported,
not hung on. Every command goes through `Shell`, which prints instead of running in --dry-run.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vitfleet.fleet_config import BoardConfig, SshConfig

SSH_UNREACHABLE = 255  # ssh's own exit status for connection/authentication failures


@dataclass(frozen=True)
class SshOptions:
    """What every ssh/rsync call to the fleet shares (from the CLI, not from fleet.yaml)."""

    key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: int = 8

    @classmethod
    def for_fleet(cls, ssh: SshConfig, key: Path | None = None, known_hosts: Path | None = None) -> SshOptions:
        """The command line's key and known_hosts, else the fleet file's `ssh:` ones, else ssh's defaults."""
        return cls(key=key or ssh.key, known_hosts=known_hosts or ssh.known_hosts)

    def argv(self, port: int) -> list[str]:
        args = [
            "-p",
            str(port),
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "LogLevel=ERROR",
        ]
        if self.key is not None:
            args += ["-i", str(self.key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts is not None:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return args


@dataclass(frozen=True)
class SshTarget:
    board: BoardConfig
    options: SshOptions = field(default_factory=SshOptions)

    @property
    def login(self) -> str:
        return f"{self.board.ssh_user}@{self.board.host}"

    def ssh(self, remote_command: str) -> list[str]:
        return ["ssh", *self.options.argv(self.board.ssh_port), self.login, remote_command]

    def rsync(self, source_dir: Path, dest_dir: str, excludes: Sequence[str] = ()) -> list[str]:
        remote_shell = shlex.join(["ssh", *self.options.argv(self.board.ssh_port)])
        # --checksum: staging files are fresh copies, so mtimes say nothing; content decides.
        args = ["rsync", "-rlp", "--checksum", "--delete", "--itemize-changes", "-e", remote_shell]
        args += [f"--exclude={pattern}" for pattern in excludes]
        return args + [f"{source_dir}/", f"{self.login}:{dest_dir}/"]


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Shell:
    """Runs local commands (ssh, rsync, builds); in dry-run it only reports them."""

    def __init__(self, dry_run: bool = False, echo: Callable[[str], None] | None = None, timeout: float = 900):
        self.dry_run = dry_run
        self.echo = echo or (lambda line: None)
        self.timeout = timeout
        self.commands: list[list[str]] = []

    def run(self, argv: list[str], stdin: str | None = None, timeout: float | None = None) -> CommandResult:
        self.commands.append(argv)
        self.echo(shlex.join(argv) + ("  < (stdin)" if stdin is not None else ""))
        if self.dry_run:
            return CommandResult(0, "", "")
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout or self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"timed out after {timeout or self.timeout:.0f} s: {argv[0]}")
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]} is not installed on this machine")
        return CommandResult(done.returncode, done.stdout, done.stderr)
