"""The demo's child processes: real `vitfleet` subprocesses (so killing one is a real crash), each with a log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vitfleet.errors import UserError


class ChildFailed(UserError):
    """A fleet process exited while it should be running; the message quotes its log."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


class ProcessGroup:
    def __init__(self, log_dir: Path, python: str = sys.executable) -> None:
        self.log_dir = log_dir
        self.python = python  # another interpreter: e.g. a board-only venv in tests/test_board_venv.py
        log_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, Child] = {}

    def spawn(self, name: str, args: list[str]) -> Child:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            # Own session: a Ctrl-C in the terminal reaches the demo only, which then stops children in order.
            proc = subprocess.Popen(
                [self.python, "-m", "vitfleet.cli", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        child = Child(name, proc, log_path)
        self.children[name] = child
        return child

    def check_alive(self, names: list[str] | None = None) -> None:
        for child in self.children.values():
            if (names is None or child.name in names) and child.proc.poll() is not None:
                raise ChildFailed(
                    f"{child.name} exited with code {child.proc.returncode}: {child.tail()} "
                    f"(full log: {child.log_path})"
                )

    def stop(self, name: str, timeout: float = 5.0) -> int | None:
        child = self.children[name]
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        return child.proc.returncode

    def stop_all(self, timeout: float = 5.0) -> dict[str, int | None]:
        for child in self.children.values():
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes = {}
        for child in self.children.values():
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            codes[child.name] = child.proc.returncode
        return codes
