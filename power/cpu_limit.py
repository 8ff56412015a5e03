"""The CPU share this process may use: its cgroup's CPU quota (a container's `--cpus`, a systemd `CPUQuota=`,
a lab board's quota), None when it has none.

A board under a quota computes a frame at full speed until the period's quota runs out and then waits, so its
wall time per frame depends on how busy it is; its CPU time per frame over its share does not. cgroup v1 keeps
the quota in `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the process's cpu group, v2 in `cpu.max` ("max" or
"<quota> <period>"); /proc/self/cgroup names the group. Roots are parameters so tests read sample trees.
"""

from __future__ import annotations

from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def own_cpu_group(cgroup_file: Path = PROC_CGROUP) -> tuple[int, str] | None:
    """(cgroup version, group path) holding this process's cpu controller, from /proc/self/cgroup's lines
    `<id>:<controllers>:<path>` (v2: `0::<path>`)."""
    try:
        lines = cgroup_file.read_text().splitlines()
    except OSError:
        return None
    unified = None
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if "cpu" in controllers.split(","):
            return 1, path
        if controllers == "":
            unified = path
    return None if unified is None else (2, unified)


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("max 100000" or "50000 100000") as cores, None without a limit or when unreadable."""
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_limit_cores(cgroup_file: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """This process's CPU quota in cores, None when it runs without one (or it cannot be read)."""
    group = own_cpu_group(cgroup_file)
    if group is None:
        return None
    version, path = group
    rel = path.lstrip("/")
    if version == 2:
        text = _read(root / rel / "cpu.max") or _read(root / "unified" / rel / "cpu.max")
        return None if text is None else parse_cpu_max(text)
    for mount in ("cpu", "cpu,cpuacct"):
        quota, period = _read(root / mount / rel / "cpu.cfs_quota_us"), _read(root / mount / rel / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return parse_cpu_max(f"{quota.strip()} {period.strip()}".replace("-1 ", "max "))
    return None
