"""`vitfleet deploy ...`: plan, profile, certs, firstboot, apply (what `make deploy` runs), status, discover."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitfleet.console import console, emit, emit_rows, err_console, user_errors

app = typer.Typer(help="Deploy a fleet to real boards over SSH (plan, certificates, services).", no_args_is_help=True)

FleetOpt = Annotated[Path, typer.Option("--fleet", "-f", help="fleet.yaml (see docs/fleet.example.yaml)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
KeyOpt = Annotated[Path | None, typer.Option("--ssh-key", help="private key for the boards (default: ssh's own)")]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file to use and extend")]
CertsOpt = Annotated[Path, typer.Option("--certs-dir", help="where `deploy certs` keeps CA, certs, passwords")]
BoardsOpt = Annotated[list[str] | None, typer.Option("--board", "-b", help="only this board (repeatable)")]


def _load(fleet_file: Path):
    from vitfleet.fleet_config import load_fleet

    return load_fleet(fleet_file)  # measured speeds applied on load


def _existing_secrets(fleet, certs_dir: Path):
    """The fleet's certificates and passwords when `deploy certs` made them, else None (a broker without them)."""
    from vitfleet.firmware_scripts.certs import secrets_for

    fleet_secrets = secrets_for(fleet, certs_dir)
    return fleet_secrets if fleet_secrets.root.exists() else None


def _plan(fleet):
    from vitfleet.firmware_scripts.fleet_plan import make_plan, part_costs

    return make_plan(fleet, part_costs(fleet.bundle))


@app.command("plan")
@user_errors
def plan_cmd(fleet: FleetOpt = Path("fleet.yaml"), as_json: JsonOpt = False) -> None:
    """Show which part, engine (precision/backend) and services each board gets."""
    fleet_cfg = _load(fleet)
    plan = _plan(fleet_cfg)
    rows = [b.row() for b in plan.boards]
    if as_json:
        emit(
            {
                "fleet": plan.fleet,
                "broker": plan.broker,
                "aggregator": plan.aggregator,
                "camera": plan.camera,
                "boards": rows,
            },
            as_json=True,
        )
        return
    emit_rows(rows, as_json=False, title=f"fleet {plan.fleet}: placement (ED-ViT greedy by memory and speed)")
    console.print(f"broker: {plan.broker}   aggregator: {plan.aggregator or '-'}   camera: {plan.camera or '-'}")


@app.command("profile")
@user_errors
def profile_cmd(
    fleet: FleetOpt = Path("fleet.yaml"),
    board: BoardsOpt = None,
    seconds: Annotated[float, typer.Option(help="benchmark length per board")] = 2.0,
    ssh_key: KeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure each board's speed (GFLOP/s, float32 matmul) over SSH; stored in <fleet>.speeds.json."""
    from vitfleet.firmware_scripts.speed_profile import ProfileError, profile_board, speeds_path, store_speed
    from vitfleet.firmware_scripts.ssh_target import Shell, SshOptions
    from vitfleet.fleet_config import load_fleet

    fleet_cfg = load_fleet(fleet)
    names = board or [b.name for b in fleet_cfg.boards]
    options = SshOptions.for_fleet(fleet_cfg.ssh, ssh_key, known_hosts)
    rows, failed = [], False
    for name in names:
        cfg = fleet_cfg.board(name)
        try:
            gflops = profile_board(cfg, options, Shell(), seconds)
        except ProfileError as exc:
            err_console.print(f"[red]{exc}[/]", highlight=False)
            rows.append({"board": name, "speed": None, "status": "failed"})
            failed = True
            continue
        store_speed(speeds_path(fleet), name, gflops)
        rows.append({"board": name, "speed": round(gflops, 3), "status": "measured"})
    emit_rows(rows, as_json, title=f"board speed (GFLOP/s) -> {speeds_path(fleet)}")
    if failed:
        raise typer.Exit(1)


@app.command("certs")
@user_errors
def certs_cmd(
    fleet: FleetOpt = Path("fleet.yaml"), certs_dir: CertsOpt = Path(".certs"), as_json: JsonOpt = False
) -> None:
    """Make the fleet's CA, broker/board certificates and MQTT passwords (keeps what exists)."""
    from vitfleet.firmware_scripts.certs import make_certs, secrets_for

    fleet_cfg = _load(fleet)
    done = make_certs(fleet_cfg, certs_dir)
    emit(
        {
            "folder": str(secrets_for(fleet_cfg, certs_dir).root),
            "created": ", ".join(done["created"]) or "nothing",
            "kept": ", ".join(done["kept"]) or "-",
        },
        as_json,
        title="certificates and passwords (mode 600)",
    )


@app.command("broker-config")
@user_errors
def broker_config_cmd(
    out: Annotated[Path, typer.Option("--out", help="folder to write the broker files to")],
    fleet: FleetOpt = Path("fleet.yaml"),
    certs_dir: CertsOpt = Path(".certs"),
    files_dir: Annotated[
        str | None, typer.Option(help="where the files will sit on the broker (default: --out)")
    ] = None,
    run_user: Annotated[str, typer.Option(help="user mosquitto drops to")] = "mosquitto",
) -> None:
    """Write mosquitto.conf, ACL, password file and certificates for a broker you run yourself."""
    from vitfleet.firmware_scripts.broker_config import write_broker_files
    from vitfleet.firmware_scripts.certs import secrets_for

    fleet_cfg = _load(fleet)
    fleet_secrets = secrets_for(fleet_cfg, certs_dir)
    if not fleet_secrets.root.exists():
        from vitfleet.firmware_scripts.errors import DeployError

        raise DeployError(f"no certificates for fleet {fleet_cfg.name} in {certs_dir}; run: make certs FLEET={fleet}")
    write_broker_files(
        fleet_cfg, _plan(fleet_cfg).placement, fleet_secrets, out, files_dir or str(out.resolve()), run_user
    )
    console.print(
        f"wrote {out}/mosquitto.conf, acl and credentials; start with: mosquitto -c "
        f"{files_dir or out.resolve()}/mosquitto.conf"
    )


@app.command("firstboot")
@user_errors
def firstboot_cmd(
    board: Annotated[str, typer.Option("--board", "-b", help="board name from fleet.yaml")],
    pubkey: Annotated[Path, typer.Option("--pubkey", help="your SSH public key (.pub)")],
    out: Annotated[Path, typer.Option("--out", help="folder for user-data / firstrun.sh")],
    fleet: FleetOpt = Path("fleet.yaml"),
) -> None:
    """Write first-boot files (cloud-init user-data, Pi OS firstrun.sh) for a fresh SD card."""
    from vitfleet.firmware_scripts.first_boot import write_first_boot
    from vitfleet.fleet_config import load_fleet

    fleet_cfg = load_fleet(fleet)
    for path in write_first_boot(fleet_cfg, fleet_cfg.board(board), pubkey, out):
        console.print(str(path))
    console.print("next: docs/deploy.md, 'First boot without a keyboard'")


@app.command("apply")
@user_errors
def apply_cmd(
    fleet: FleetOpt = Path("fleet.yaml"),
    board: BoardsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print every command, run none")] = False,
    ssh_key: KeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    certs_dir: CertsOpt = Path(".certs"),
    wait: Annotated[float, typer.Option(help="seconds to wait for every board to be online")] = 120,
    as_json: JsonOpt = False,
) -> None:
    """Build engines, ship code/engines/config to every board, (re)start services, wait until online."""
    from vitfleet.firmware_scripts.certs import secrets_for
    from vitfleet.firmware_scripts.deploy import DeployOptions, deploy_fleet
    from vitfleet.firmware_scripts.ssh_target import SshOptions
    from vitfleet.firmware_scripts.status_report import check_online, report

    fleet_cfg = _load(fleet)
    plan = _plan(fleet_cfg)
    fleet_secrets = secrets_for(fleet_cfg, certs_dir)
    fleet_secrets = fleet_secrets if fleet_secrets.root.exists() else None
    echo = (
        (lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False))
        if dry_run and not as_json
        else (lambda line: None)
    )
    options = DeployOptions(
        ssh=SshOptions.for_fleet(fleet_cfg.ssh, ssh_key, known_hosts), dry_run=dry_run, only=board or [], echo=echo
    )
    results = deploy_fleet(fleet_cfg, plan, fleet_secrets, options)
    if not dry_run and wait > 0:
        check_online(fleet_cfg, plan, fleet_secrets, results, wait)
    if not report(results, as_json, dry_run):
        raise typer.Exit(1)


@app.command("status")
@user_errors
def status_cmd(
    fleet: FleetOpt = Path("fleet.yaml"),
    certs_dir: CertsOpt = Path(".certs"),
    wait: Annotated[float, typer.Option(help="seconds to listen for availability")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Show every board's availability as the broker sees it."""
    from vitfleet.firmware_scripts.deploy import BoardResult
    from vitfleet.firmware_scripts.status_report import check_online, report

    fleet_cfg = _load(fleet)
    plan = _plan(fleet_cfg)
    results = [BoardResult(b.name, b.host, "-") for b in fleet_cfg.boards]
    check_online(fleet_cfg, plan, _existing_secrets(fleet_cfg, certs_dir), results, wait)
    if not report(results, as_json, dry_run=False):
        raise typer.Exit(1)


@app.command("discover")
@user_errors
def discover_cmd(
    fleet: FleetOpt = Path("fleet.yaml"),
    certs_dir: CertsOpt = Path(".certs"),
    wait: Annotated[float, typer.Option(help="seconds to listen for the boards' hellos")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """List boards on the fleet's broker that fleet.yaml does not name, and print their fleet.yaml stanza."""
    from vitfleet.firmware_scripts.availability import operator_login
    from vitfleet.firmware_scripts.discover import listen, rows, stanza

    fleet_cfg = _load(fleet)
    found = listen(fleet_cfg, operator_login(fleet_cfg, _existing_secrets(fleet_cfg, certs_dir)), wait)
    new = found.unnamed(fleet_cfg)
    if as_json:
        emit({"boards": rows(new), "stanza": stanza(new) if new else "", "malformed": found.malformed}, True)
        return
    for board, why in sorted(found.malformed.items()):
        err_console.print(f"[yellow]{board}: {why}[/yellow]")
    if not new:
        console.print(f"no boards beyond {fleet}'s said hello on the broker within {wait:g} s")
        return
    emit_rows(rows(new), False, title=f"boards on the broker that {fleet} does not name")
    console.print(f"add to {fleet} (boards:), then `vitfleet deploy apply`, or set aggregator.adopt: true:")
    console.print(stanza(new), markup=False, highlight=False)
