"""`vitfleet lab ...`: arm64 boards under qemu on this machine (make lab-boards), and what is measured on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitfleet.console import console, emit_rows, user_errors

app = typer.Typer(
    help="The fleet lab: arm64 Debian boards under qemu, each with systemd, sshd and its own "
    "network namespace (root only).",
    no_args_is_help=True,
)

LabDirOpt = Annotated[Path, typer.Option("--lab-dir", help="where the lab keeps its boards, key and known_hosts")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
FleetOpt = Annotated[Path, typer.Option("--fleet", "-f", help="the lab fleet file")]
CertsOpt = Annotated[Path, typer.Option("--certs-dir", help="where `make certs` keeps CA, certs, passwords")]


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False)


@app.command("boards")
@user_errors
def boards_cmd(
    n: Annotated[int, typer.Option("--n", help="how many arm64 boards (arm1..armN)")] = 2,
    fresh: Annotated[bool, typer.Option("--fresh", help="new root file systems (loses installs)")] = False,
    lab_dir: LabDirOpt = Path("runs/lab"),
    as_json: JsonOpt = False,
) -> None:
    """Build the arm64 root file system once (cached), then boot N boards and the hub's sshd."""
    from vitfleet.lab.lab_up import bring_up

    boards = bring_up(lab_dir, n, fresh, echo=(lambda line: None) if as_json else _say)
    emit_rows([b.status() for b in boards], as_json=as_json, title="lab boards")
    if as_json:
        return
    console.print(
        "next: make certs FLEET=docs/lab-fleet.yaml && make deploy FLEET=docs/lab-fleet.yaml", highlight=False
    )


@app.command("status")
@user_errors
def status_cmd(lab_dir: LabDirOpt = Path("runs/lab"), as_json: JsonOpt = False) -> None:
    """Which lab boards exist and which run."""
    from vitfleet.lab.boards import read_lab

    emit_rows([b.status() for b in read_lab(lab_dir)], as_json=as_json, title="lab boards")


@app.command("stop")
@user_errors
def stop_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="boards to power off (default: all)")] = None,
    lab_dir: LabDirOpt = Path("runs/lab"),
) -> None:
    """Power lab boards off (all of them, and the hub's sshd, when no name is given); their roots are kept."""
    from vitfleet.lab.lab_up import stop

    stop(lab_dir, names, echo=_say)


@app.command("restart")
@user_errors
def restart_cmd(
    name: Annotated[str, typer.Argument(help="the board to reboot")],
    hard: Annotated[bool, typer.Option("--hard", help="pull the plug instead of powering off")] = False,
    lab_dir: LabDirOpt = Path("runs/lab"),
) -> None:
    """Reboot one board; its services come back by themselves if deploy enabled them."""
    from vitfleet.lab.lab_up import restart

    took = restart(lab_dir, name, hard, echo=_say)
    _say(f"{name}: sshd answers again after {took:.0f} s")


@app.command("check")
@user_errors
def check_cmd(
    fleet: FleetOpt = Path("docs/lab-fleet.yaml"),
    certs_dir: CertsOpt = Path(".certs"),
    frames: Annotated[int, typer.Option(help="test images replayed through the live fleet")] = 500,
    images: Annotated[int, typer.Option(help="images for the aarch64-vs-x86 comparison (0: skip)")] = 1000,
    board: Annotated[str | None, typer.Option(help="the arm64 board to compare (default: first agent)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the report JSON here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The deployed lab fleet: live accuracy vs the same engines offline (0 lost), and ARM vs x86 numerics."""
    import shlex
    import sys

    from vitfleet.console import emit
    from vitfleet.lab.live_check import lab_check

    command = "vitfleet lab " + shlex.join(sys.argv[sys.argv.index("check") :]) if "check" in sys.argv else "check"
    report = lab_check(fleet, certs_dir, frames, images, board, out, command)
    if as_json:
        emit(report, as_json=True)
        return
    live = report["live"]
    _say(
        f"live fleet: {live['answered']}/{live['frames']} answered, {live['lost']} lost, {live['degraded']} "
        f"degraded; accuracy live {live['live_accuracy']} vs offline {live['offline_accuracy']} "
        f"({live['difference_pt']} pt); e2e p50 {live['e2e_p50_ms']} ms (under qemu)"
    )
    numerics = report["numerics"]
    if numerics:
        cosines = ", ".join(f"part {p['part']} {p['cosine_mean']} (min {p['cosine_min']})" for p in numerics["parts"])
        _say(
            f"{numerics['board']} ({numerics['machine_board']}) vs {numerics['machine_here']}: classes agree on "
            f"{numerics['class_agreement']:.2%} of {numerics['images']} images; cosine {cosines}"
        )
    if not live["ok"] or live["lost"]:
        raise typer.Exit(1)


@app.command("report")
@user_errors
def report_cmd(
    results: Annotated[Path, typer.Option(help="the JSON `lab check --out` wrote")] = Path(
        "bench/results/lab-fleet.json"
    ),
    doc: Annotated[Path, typer.Option(help="the page whose generated block is rewritten")] = Path("docs/lab.md"),
) -> None:
    """Rewrite docs/lab.md's figures from the lab check's results file."""
    from vitfleet.lab.report import update_doc

    update_doc(results, doc)
    _say(f"{doc}: figures from {results}")
