"""Console output for every subcommand: rich tables/progress for people, JSON for scripts."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vitfleet.errors import UserError

PIPE_WIDTH = 1000  # columns assumed when the stream is a pipe or file: tables print whole, never cut to 80


def _pipe_width(stream: Any) -> int | None:
    """None (rich measures the terminal) on a terminal or when $COLUMNS is set; PIPE_WIDTH otherwise.

    Rich assumes 80 columns when the output is not a terminal and cuts table cells to fit ("192.…"), which
    loses hostnames and figures in `vitfleet ... | cat`, `| grep` or a log file.
    """
    if os.environ.get("COLUMNS"):
        return None
    try:
        return None if stream is not None and stream.isatty() else PIPE_WIDTH
    except (AttributeError, ValueError):  # a closed or unusual stream
        return PIPE_WIDTH


console = Console(width=_pipe_width(sys.stdout))
err_console = Console(stderr=True, width=_pipe_width(sys.stderr))
F = TypeVar("F", bound=Callable[..., Any])


def progress_bar(disable: bool = False) -> Progress:
    """Progress bars go to stderr so `--json` stdout stays machine-readable."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=disable,
    )


def user_errors(func: F) -> F:
    """Turn UserError (and pydantic/yaml mistakes raised as UserError) into one red line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit(data: dict[str, Any], as_json: bool, title: str = "") -> None:
    """Print figures as a two-column table, or as one JSON object on stdout."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    table = Table(title=title or None, show_header=False)
    table.add_column("key", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")  # a narrow terminal wraps a value inside its cell, never cuts it
    for key, value in data.items():
        table.add_row(str(key), f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def emit_rows(rows: list[dict[str, Any]], as_json: bool, title: str = "") -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table(title=title or None)
    for key in rows[0] if rows else []:
        table.add_column(str(key), overflow="fold")
    for row in rows:
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()])
    console.print(table)
