"""The `vitfleet` console entry point: one subcommand per step of the pipeline.

Each component owns its commands; this file only wires them together, and imports
nothing heavy so `vitfleet --help` is instant and works on a board without torch.
"""

from __future__ import annotations

import importlib.util
import sys

import typer

from vitfleet.console import err_console
from vitfleet.errors import UserError
from vitfleet.plugins import load_plugins

try:  # before the commands are built: their --help lists what plugins register
    load_plugins()
except UserError as _exc:
    err_console.print(f"error: {_exc}", highlight=False)
    sys.exit(2)

from vitfleet.agent import cli as agent_cli  # noqa: E402
from vitfleet.engines import cli as engines_cli  # noqa: E402
from vitfleet.power import cli as power_cli  # noqa: E402

app = typer.Typer(
    help="Run a decomposed Vision Transformer on a fleet of edge boards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _installed(subpackage: str) -> bool:
    """A board receives the runtime layer only (firmware_scripts/board_tree.py): no training, bench or deploy."""
    return importlib.util.find_spec(f"vitfleet.{subpackage}") is not None


if _installed("decompose"):
    from vitfleet.decompose import cli as decompose_cli

    app.command("teacher")(decompose_cli.teacher)
    app.command("eval")(decompose_cli.evaluate_cmd)
    app.command("decompose")(decompose_cli.decompose)
app.command("agent")(agent_cli.agent)
app.command("aggregator")(agent_cli.aggregator)
app.command("camera")(agent_cli.camera)
if _installed("fleet"):
    from vitfleet.fleet import cli as fleet_cli

    app.command("demo")(fleet_cli.demo)
app.command("view")(agent_cli.view)
app.command("power")(power_cli.power)
if _installed("bench"):
    from vitfleet.bench import cli as bench_cli

    app.add_typer(bench_cli.app, name="bench")
if _installed("firmware_scripts"):
    from vitfleet.firmware_scripts import cli as deploy_cli

    app.add_typer(deploy_cli.app, name="deploy")
if _installed("lab"):
    from vitfleet.lab import cli as lab_cli

    app.add_typer(lab_cli.app, name="lab")
app.add_typer(engines_cli.app, name="engines")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
