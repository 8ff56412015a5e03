"""The table `make deploy` ends with: per board, what the deploy did and whether it is online."""

from __future__ import annotations

from vitfleet.console import console, emit_rows
from vitfleet.firmware_scripts.availability import operator_login, wait_online
from vitfleet.firmware_scripts.certs import FleetSecrets
from vitfleet.firmware_scripts.deploy import BoardResult
from vitfleet.firmware_scripts.fleet_plan import FleetPlan
from vitfleet.fleet_config import FleetConfig


def check_online(
    fleet: FleetConfig, plan: FleetPlan, fleet_secrets: FleetSecrets | None, results: list[BoardResult], timeout: float
) -> None:
    """Fill in each non-failed board's availability (in place)."""
    alive = [r for r in results if not r.failed]
    reporting = [r.board for r in alive if set(plan.board(r.board).services) - {"broker"}]
    broker_only = [r.board for r in alive if r.board not in reporting and plan.board(r.board).services]
    states = wait_online(fleet, operator_login(fleet, fleet_secrets), reporting, broker_only, timeout)
    for r in alive:
        r.availability = states.get(r.board, "no services")


def report(results: list[BoardResult], as_json: bool, dry_run: bool) -> bool:
    """Print the table; True when every board deployed and (unless a dry run) is online."""
    rows = [
        {"board": r.board, "host": r.host, "deploy": r.status, "availability": r.availability, "detail": r.detail}
        for r in results
    ]
    emit_rows(rows, as_json, title="vitfleet deploy" + (" (dry run: nothing was run)" if dry_run else ""))
    ok = all(not r.failed for r in results) and (
        dry_run or all(r.availability in ("online", "no services", "-") for r in results)
    )
    if not as_json and not dry_run and results and all(r.status == "unchanged" for r in results):
        console.print("nothing changed: every board was already up to date")
    return ok
