"""Jetson power from NVIDIA's `tegrastats` utility (every JetPack has it; no extra package).

Rails appear as `NAME <now>/<average>`, in mW: JetPack 4 prints bare numbers
("POM_5V_IN 2132/2132", Nano), JetPack 5/6 add the unit ("VDD_IN 4761mW/4777mW", Orin).
Field list: NVIDIA DRIVE OS / L4T "tegrastats Utility" reported-statistics table.
The total input rail (VDD_IN, POM_5V_IN) is the board's draw; without one, rails are summed.

tegrastats streams one line per interval, so the meter keeps one long-lived process and a reader
thread that holds the latest line; read() returns the latest rail total.
Unverified on hardware: tested on recorded tegrastats lines replayed through a real subprocess.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence

from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
# A rail is NAME, space, integer[mW]/integer[mW], then whitespace or end of line; the lookahead keeps
# "RAM 1655/3956MB" and "IRAM 0/252kB(lfb 252kB)" out.
_RAIL = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


class TegrastatsParseError(ValueError):
    """A tegrastats line with no power rail in it."""


def parse_tegrastats_rails(line: str) -> dict[str, int]:
    """{rail: instantaneous mW} of one tegrastats line; empty when the line has no rails."""
    return {m.group(1): int(m.group(2)) for m in _RAIL.finditer(line)}


def tegrastats_total(line: str) -> tuple[float, str]:
    """(watts, which rail or 'sum') of one line; TegrastatsParseError when the line has no rail."""
    rails = parse_tegrastats_rails(line)
    if not rails:
        raise TegrastatsParseError(f"no power rail in tegrastats line {line.strip()[:80]!r}")
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name] / 1000.0, name
    return sum(rails.values()) / 1000.0, "sum"


class TegrastatsMeter(Meter):
    estimated = False

    def __init__(
        self,
        command: Sequence[str] | None = None,
        interval_ms: int = 100,
        first_line_timeout_s: float = 3.0,
        stale_after_s: float | None = None,
    ) -> None:
        if command is None:
            exe = shutil.which("tegrastats") or next(
                (p for p in ("/usr/bin/tegrastats", "/usr/sbin/tegrastats") if shutil.which(p)), None
            )
            if exe is None:
                raise MeterUnavailable("tegrastats is not installed (it ships with JetPack; not a Jetson)")
            command = [exe, "--interval", str(interval_ms)]
        self.command = list(command)
        self.min_interval_s = interval_ms / 1000.0
        self._stale_after_s = stale_after_s if stale_after_s is not None else max(2.0, 5 * interval_ms / 1000.0)
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._eof = threading.Event()
        self._latest: tuple[float, float, str] | None = None  # (monotonic time, watts, rail)
        self._bad_lines = 0
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise MeterUnavailable(f"cannot start {self.command[0]}: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._read_lines, name="tegrastats-reader", daemon=True)
        self._reader.start()
        self._first.wait(first_line_timeout_s)
        if self._latest is None:
            exited = self._eof.is_set()
            stderr = self._shutdown()
            why = (
                f"exited with code {self._proc.returncode} before printing a power rail"
                if exited
                else f"printed no line with a power rail within {first_line_timeout_s:g} s"
            )
            said = f": {stderr.strip()[:200]}" if stderr.strip() else ""
            raise MeterUnavailable(f"{self.command[0]} {why}{said}")
        rail = self._latest[2]
        self.source = "tegrastats" if rail != "sum" else "tegrastats:sum"
        self.detail = (
            f"{rail} rail from {' '.join(self.command)}"
            if rail != "sum"
            else "no VDD_IN/POM_5V_IN rail; sum of all rails tegrastats prints"
        )

    def _read_lines(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                watts, rail = tegrastats_total(line)
            except TegrastatsParseError:
                self._bad_lines += 1
                continue
            with self._lock:
                self._latest = (time.monotonic(), watts, rail)
            self._first.set()
        self._eof.set()
        self._first.set()  # wake a constructor still waiting for the first line

    def read(self) -> float:
        with self._lock:
            latest = self._latest
        code = self._proc.poll()
        if latest is None:
            raise MeterReadError("tegrastats has not printed a power line yet")
        age = time.monotonic() - latest[0]
        if age > self._stale_after_s:
            state = f"exited with code {code}" if code is not None else "stopped printing"
            raise MeterReadError(
                f"tegrastats {state}; last power line is {age:.1f} s old "
                f"({self._bad_lines} lines without a rail since start)"
            )
        return latest[1]

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> str:
        """Stop tegrastats; returns what it wrote to stderr (for the probe's reason)."""
        proc = getattr(self, "_proc", None)
        if proc is None or proc.stdout is None or proc.stdout.closed:
            return ""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
        self._reader.join(timeout=2)  # the process is gone, so the reader sees EOF
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return stderr
