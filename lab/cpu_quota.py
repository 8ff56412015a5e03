"""A board's own CPU share: a process (and every child it starts) in its own cgroup, capped at `cores` of a core.

cgroup v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, the cpu controller mounted at /sys/fs/cgroup/cpu, CPU time from
the cpuacct controller) or v2 (`cpu.max`, `cpu.stat`), whichever holds the cpu controller here. The quota can be
changed while the board runs (`set_cores`), e.g. to slow one board mid-run.

The period is as short as the kernel allows for the quota (the quota itself at its 1-ms minimum: q = 0.35 runs
1 ms in every 2.86 ms) unless one is given. CFS lets a group run at full speed for `cores x period` and then stops
it until the period ends, so a long period is nothing like a slower CPU: with 100 ms, a 20-ms inference that starts
with a fresh quota finishes at full speed and a 100-ms one stalls in 65-ms blocks. Even at 10 ms, timed here, a
17-ms int8 part ran *faster* than its full-core time / q (the group overruns its quota within a period) while the
87-ms teacher did not, which flatters a fleet of short parts against one long teacher; at the shortest period both
took their full-core time / q within a few per cent. Shorter periods cost more throttling events, nothing else.
"""

from __future__ import annotations

import math
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vitfleet.lab.errors import LabError

CGROUP_ROOT = Path("/sys/fs/cgroup")
LAB_GROUP = "vitfleet-lab"
MIN_QUOTA_US = 1_000  # the kernel refuses a cfs quota below 1 ms (and a period below 1 ms)
MAX_PERIOD_US = 1_000_000


@dataclass(frozen=True)
class CgroupLayout:
    """Where the cpu controller (and CPU-time accounting) lives on this machine."""

    version: Literal[1, 2]
    cpu_root: Path  # v1: the cpu hierarchy; v2: the unified hierarchy holding the cpu controller
    acct_root: Path  # v1: the cpuacct hierarchy (may equal cpu_root when co-mounted); v2: cpu_root


def _not_writable(why: str) -> LabError:
    return LabError(
        f"cgroups are not writable here ({why}); run as root on a machine with the cgroup v1 cpu "
        "controller or cgroup v2 with the cpu controller enabled"
    )


def detect_cgroups(root: Path = CGROUP_ROOT) -> CgroupLayout:
    """The cgroup layout with a usable cpu controller, or a LabError saying why there is none."""
    if os.geteuid() != 0:
        raise _not_writable("not root")
    for cpu in (root / "cpu", root / "cpu,cpuacct"):
        if (cpu / "cpu.cfs_quota_us").exists():
            acct = cpu if (cpu / "cpuacct.usage").exists() else root / "cpuacct"
            if not (acct / "cpuacct.usage").exists():
                raise _not_writable(f"{cpu} has no cpuacct controller beside it")
            return CgroupLayout(1, cpu, acct)
    for unified in (root, root / "unified"):
        controllers = unified / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            return CgroupLayout(2, unified, unified)
    raise _not_writable(f"no cpu controller under {root}")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise _not_writable(f"writing {value!r} to {path}: {exc.strerror or exc}") from exc


class CpuQuota:
    """One board's cgroup: create, enroll a command, change the quota, read CPU time, remove.

    with CpuQuota("agent1", 0.35) as quota:
        proc = subprocess.Popen(quota.wrap_argv(["python", "-m", ...]))
        ...
        quota.set_cores(0.2)      # this board is now slower
    """

    def __init__(
        self, name: str, cores: float | None, period_us: int | None = None, layout: CgroupLayout | None = None
    ) -> None:
        self.name = name
        self.layout = layout or detect_cgroups()
        self.period_us = period_us
        self.cores: float | None = cores  # None: no cap (unlimit)
        group = f"{LAB_GROUP}/{name}-{os.getpid()}"  # pid: two runs on one machine never share a group
        self.cpu_dir = self.layout.cpu_root / group
        self.acct_dir = self.layout.acct_root / group
        self._created = False

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> CpuQuota:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    @property
    def dirs(self) -> list[Path]:
        return list(dict.fromkeys([self.cpu_dir, self.acct_dir]))  # one dir when cpu and cpuacct are co-mounted

    def create(self) -> CpuQuota:
        if self.layout.version == 2:  # v2: the cpu controller must be enabled on the way down
            for parent in (self.layout.cpu_root, self.layout.cpu_root / LAB_GROUP):
                parent.mkdir(exist_ok=True)
                if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
                    _write(parent / "cgroup.subtree_control", "+cpu")
        for d in self.dirs:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _not_writable(f"mkdir {d}: {exc.strerror or exc}") from exc
        self._created = True
        if self.cores is None:
            self.unlimit()
        else:
            self.set_cores(self.cores)
        return self

    def remove(self) -> None:
        """Move any process still inside to the parent group, then delete the group (idempotent)."""
        if not self._created:
            return
        for d in self.dirs:
            parent_procs = d.parent.parent / "cgroup.procs"
            for _ in range(50):
                pids = self._pids(d)
                if not pids:
                    break
                for pid in pids:
                    try:
                        parent_procs.write_text(str(pid))
                    except OSError:
                        pass  # exited meanwhile
                time.sleep(0.02)
            try:
                d.rmdir()
            except OSError:
                pass  # a process we could not move: the empty-on-exit group is left for the next run's cleanup
        self._created = False

    # ---- the quota -----------------------------------------------------------------------------------------
    def quota_us(self, cores: float) -> tuple[int, int]:
        """(quota, period) in µs for `cores`: the given period, else the shortest one whose quota is the kernel's
        1-ms minimum; a given period grows when its quota would fall under that minimum."""
        shortest = max(MIN_QUOTA_US, math.ceil(MIN_QUOTA_US / cores))
        period = min(MAX_PERIOD_US, max(self.period_us or 0, shortest))
        return round(cores * period), period

    def unlimit(self) -> None:
        """No cap from now on (the group still accounts CPU time): the unquotaed baseline of a comparison."""
        if self.layout.version == 1:
            _write(self.cpu_dir / "cpu.cfs_quota_us", "-1")
        else:
            _write(self.cpu_dir / "cpu.max", f"max {self.period_us or 100_000}")
        self.cores = None

    def set_cores(self, cores: float) -> None:
        """Cap the group at `cores` of a core from now on (the running board slows down or speeds up)."""
        ncpu = os.cpu_count() or 1
        if not 0 < cores <= ncpu:
            raise LabError(f"a CPU quota of {cores} cores is out of range; give 0 < cores <= {ncpu}")
        quota, period = self.quota_us(cores)
        if self.layout.version == 1:
            # Unlimited first: the kernel checks each write against the other value, so a new (period, quota)
            # pair written over an old one could be refused half-way.
            _write(self.cpu_dir / "cpu.cfs_quota_us", "-1")
            _write(self.cpu_dir / "cpu.cfs_period_us", str(period))
            _write(self.cpu_dir / "cpu.cfs_quota_us", str(quota))
        else:
            _write(self.cpu_dir / "cpu.max", f"{quota} {period}")
        self.cores = cores

    # ---- processes -----------------------------------------------------------------------------------------
    @staticmethod
    def _pids(d: Path) -> list[int]:
        try:
            return [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def pids(self) -> list[int]:
        return self._pids(self.cpu_dir)

    def wrap_argv(self, argv: list[str]) -> list[str]:
        """`argv` started inside the group: a shell enrolls itself, then execs `argv` (same pid, so signals reach
        it), so not even the interpreter's start-up runs outside the quota."""
        targets = " ".join(shlex.quote(str(d / "cgroup.procs")) for d in self.dirs)
        script = f'for g in {targets}; do echo $$ > "$g" || exit 97; done; exec "$@"'
        return ["sh", "-c", script, "lab-cgroup", *argv]

    # ---- what it used --------------------------------------------------------------------------------------
    def usage_s(self) -> float:
        """CPU seconds the group's processes used so far (all threads, both user and system)."""
        if self.layout.version == 1:
            return int((self.acct_dir / "cpuacct.usage").read_text()) / 1e9
        stat = self._stat()
        return stat.get("usage_usec", 0) / 1e6

    def _stat(self) -> dict[str, int]:
        try:
            lines = (self.cpu_dir / "cpu.stat").read_text().splitlines()
        except OSError:
            return {}
        return {k: int(v) for k, v in (ln.split() for ln in lines if len(ln.split()) == 2)}

    def throttling(self) -> dict[str, float]:
        """Periods the group ran in, how many of them it was throttled in, and the time it spent throttled."""
        stat = self._stat()
        throttled_s = stat["throttled_time"] / 1e9 if "throttled_time" in stat else stat.get("throttled_usec", 0) / 1e6
        return {
            "periods": stat.get("nr_periods", 0),
            "throttled_periods": stat.get("nr_throttled", 0),
            "throttled_s": round(throttled_s, 3),
        }

    def describe(self) -> dict[str, object]:
        quota, period = self.quota_us(self.cores) if self.cores is not None else (None, self.period_us)
        knob = "cpu.cfs_quota_us/cpu.cfs_period_us" if self.layout.version == 1 else "cpu.max"
        return {
            "cores": self.cores,
            "quota_us": quota,
            "period_us": period,
            "cgroup": f"v{self.layout.version}",
            "knob": knob,
            "group": str(self.cpu_dir),
        }
