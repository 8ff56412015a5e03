"""`make deploy FLEET=...`: build engines, ship each board its tree, (re)start its services, check it answers.

Per board: read the stamp the last deploy left (`.vitfleet-deployed.json`); when its digest
equals the freshly staged tree's, ship nothing and only make sure the services run. Otherwise
rsync the tree, run bin/board-install.sh there, then write the stamp (last, so a failed install
is retried next time). A board that fails is reported and the others go on. --dry-run prints
every command and runs none of them.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vitfleet.firmware_scripts.board_tree import (
    BOARD_LOCAL_DIRS,
    STAMP_NAME,
    StagedBoard,
    board_requirements,
    snapshot_code,
    stage_board,
)
from vitfleet.firmware_scripts.certs import FleetSecrets
from vitfleet.firmware_scripts.engine_step import build_local_engines, builds_root, engine_groups, engines_key
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.fleet_plan import FleetPlan
from vitfleet.firmware_scripts.ssh_target import SSH_UNREACHABLE, CommandResult, Shell, SshOptions, SshTarget
from vitfleet.firmware_scripts.wheelhouse import wheelhouse
from vitfleet.fleet_config import FleetConfig

RSYNC_EXCLUDES = tuple(f"/{d}/" for d in BOARD_LOCAL_DIRS) + (f"/{STAMP_NAME}", "/engines/*.engine")


@dataclass
class BoardResult:
    board: str
    host: str
    status: str  # installed | updated | unchanged | restarted | failed | planned
    detail: str = ""
    availability: str = "-"
    changed_files: int = 0
    changed_sample: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class DeployOptions:
    ssh: SshOptions = field(default_factory=SshOptions)
    dry_run: bool = False
    only: list[str] = field(default_factory=list)
    echo: Callable[[str], None] = lambda line: None
    command_timeout: float = 1800  # a first install on a Pi (pip wheels, venv) takes minutes


def _last_line(done: CommandResult) -> str:
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return text[-1][:200] if text else f"exit status {done.returncode}"


def selected_boards(fleet: FleetConfig, only: list[str]) -> list[str]:
    for name in only:
        fleet.board(name)  # unknown names are a user error, with the list of valid ones
    names = [b.name for b in fleet.boards if not only or b.name in only]
    # The broker first: the other boards' services connect to it as soon as they start.
    return sorted(names, key=lambda n: "broker" not in fleet.board(n).roles)


def read_stamp(shell: Shell, target: SshTarget) -> tuple[CommandResult, dict | None]:
    home = shlex.quote(target.board.install_dir)
    done = shell.run(target.ssh(f"cat {home}/{STAMP_NAME} 2>/dev/null || true"), timeout=60)
    try:
        stamp = json.loads(done.stdout) if done.ok and done.stdout.strip() else None
    except json.JSONDecodeError:
        stamp = None  # a damaged stamp only costs a full sync
    return done, stamp if isinstance(stamp, dict) else None


def deploy_board(staged: StagedBoard, shell: Shell, options: DeployOptions) -> BoardResult:
    board = staged.board
    target = SshTarget(board, options.ssh)
    result = BoardResult(board.name, board.host, "planned" if shell.dry_run else "failed")
    home = shlex.quote(board.install_dir)
    probe, stamp = read_stamp(shell, target)
    if probe.returncode == SSH_UNREACHABLE:
        result.detail = f"unreachable over SSH as {target.login}:{board.ssh_port}: {_last_line(probe)}"
        return result
    if not probe.ok:
        result.detail = f"reading the deploy stamp failed: {_last_line(probe)}"
        return result
    if stamp is not None and stamp.get("digest") == staged.digest and not shell.dry_run:
        done = shell.run(target.ssh(f"{home}/bin/board-install.sh ensure"), timeout=options.command_timeout)
        if not done.ok:
            result.detail = f"services would not start: {_last_line(done)}"
            return result
        started = [line for line in done.stdout.splitlines() if line.startswith("started:")]
        result.status = "restarted" if started else "unchanged"
        result.detail = "; ".join(started) if started else "already up to date"
        return result
    steps = [
        # /opt is root's: the deploy account (made by `deploy firstboot`) creates its install dir with sudo.
        (
            "create install dir",
            target.ssh(
                f"{{ mkdir -p {home} 2>/dev/null || sudo -n install -d -m 755 -o "
                f'"$(id -un)" -g "$(id -gn)" {home}; }} && chmod 755 {home}'
            ),
            None,
        ),
        ("sync", target.rsync(staged.root, board.install_dir, RSYNC_EXCLUDES), None),
        ("install", target.ssh(f"{home}/bin/board-install.sh install"), None),
        (
            "stamp",
            target.ssh(f"cat > {home}/{STAMP_NAME}"),
            json.dumps({"digest": staged.digest, "files": staged.files, "fleet_board": board.name}) + "\n",
        ),
    ]
    for label, argv, stdin in steps:
        done = shell.run(argv, stdin=stdin, timeout=options.command_timeout)
        if label == "sync":
            changed = [
                line.split(" ", 1)[1]
                for line in done.stdout.splitlines()
                if line[:2] in ("<f", ">f", "cL") and " " in line
            ]
            result.changed_files = len(changed)
            result.changed_sample = changed[:3]
        if not done.ok:
            result.detail = f"{label} failed: {_last_line(done)}"
            return result
    if not shell.dry_run:
        result.status = "updated" if stamp is not None else "installed"
        sample = ", ".join(result.changed_sample) + (", ..." if result.changed_files > 3 else "")
        result.detail = f"{result.changed_files} file(s) synced ({sample}), services restarted"
    return result


def deploy_fleet(
    fleet: FleetConfig, plan: FleetPlan, fleet_secrets: FleetSecrets | None, options: DeployOptions
) -> list[BoardResult]:
    shell = Shell(dry_run=options.dry_run, echo=options.echo, timeout=options.command_timeout)
    names = selected_boards(fleet, options.only)
    if fleet_secrets is None and fleet.boards_with("broker"):
        raise DeployError(
            f"fleet {fleet.name} runs its own broker but has no certificates/passwords yet; "
            "run: make certs FLEET=<fleet.yaml> (or vitfleet deploy certs)"
        )
    engines = build_local_engines(
        fleet.bundle, builds_root(fleet), engine_groups(plan, names), options.echo, options.dry_run
    )
    results: list[BoardResult] = []
    with tempfile.TemporaryDirectory(prefix="vitfleet-deploy-") as tmp:
        code = snapshot_code(Path(tmp) / "_code")
        for name in names:
            board = fleet.board(name)
            try:
                board_plan = plan.board(name)
                needs_engines = bool({"agent", "aggregator"} & set(board_plan.services))
                engines_dir = engines.get(engines_key(board_plan)) if needs_engines else None
                if options.dry_run and engines_dir is not None and not engines_dir.exists():
                    engines_dir = None  # not built in a dry run; the staged tree is only used for its commands
                wheels = (
                    wheelhouse(
                        board.kind, board_requirements(board.kind), builds_root(fleet), options.echo, options.dry_run
                    )
                    if board.offline
                    else None
                )
                staged = stage_board(
                    fleet, plan, board, Path(tmp) / name, fleet.bundle, engines_dir, fleet_secrets, code, wheels
                )
            except DeployError as exc:
                results.append(BoardResult(name, board.host, "failed", f"staging failed: {exc}"))
                continue
            results.append(deploy_board(staged, shell, options))
    return results
