"""A lab fleet: every agent a board of its own -- its own network namespace with a shaped link, its own cgroup with a
CPU quota -- and the broker, aggregator and camera node on the host, as on a LAN whose aggregator board runs the
broker and reads the camera.

    with QuotaFleet(engines, run_dir, LocalFleetOptions(camera_uri=uri), LabOptions(cores=0.35)) as fleet:
        summary = fleet.run_camera_process(run_dir / "camera.json", ["--frames", "100"])
        fleet.set_cores("agent1", 0.2)          # board 1 is slower from now on
    report = fleet.lab_report()                 # quotas, CPU used, throttling, link shaping as applied

Agents are started as `sh` (joins the cgroup) -> `ip netns exec` -> `python -m vitfleet.cli agent`, all one pid, so
SIGTERM stops the agent cleanly. Agents are not pinned to a core unless LabOptions.pin: the quota is their share. Needs root (namespaces, cgroups); `lab_unavailable()` says why not, for tests to skip with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions
from vitfleet.fleet.processes import Child
from vitfleet.fleet_config import BrokerConfig
from vitfleet.lab.cpu_quota import CgroupLayout, CpuQuota, detect_cgroups
from vitfleet.lab.errors import LabError
from vitfleet.lab.link_shaping import ShapedLink, link_profile
from vitfleet.lab.netns import BoardLink, require_netns_tools

SYS_NET = Path("/sys/class/net")
INDEX_FIRST = 100  # lab fleets take link indices from here up (the lead's arm64 lab boards use the low ones)


class LabOptions(BaseModel):
    """Each agent's CPU share and link."""

    model_config = ConfigDict(extra="forbid")

    cores: float = Field(0.35, gt=0, description="CPU quota of every agent, in cores")
    agent_cores: dict[str, float] = Field(default_factory=dict, description="agent -> its own quota, overriding")
    period_us: int | None = None  # None: the shortest the kernel allows for the quota (lab/cpu_quota.py)
    profile: str = "lan"
    # Also pin agent i to core i mod cores. Off by default: timed here, pinning did not bring the quota closer to
    # full-core time / q beyond this VM's core-to-core noise, and it keeps an agent on a core the host side
    # may be busy on, where unpinned the scheduler moves it.
    pin: bool = False
    index_base: int | None = None  # first link index; None: the first free block from INDEX_FIRST


def lab_unavailable() -> str | None:
    """Why a lab fleet cannot run here (for a test's skip reason), or None."""
    try:
        require_netns_tools()
        detect_cgroups()
    except LabError as exc:
        return str(exc)
    return None


def free_index_block(count: int, first: int = INDEX_FIRST) -> int:
    """The first index i >= first with no lab interface vfl{i..i+count-1}h on this machine."""
    for base in range(first, 251 - count):
        if not any((SYS_NET / f"vfl{i}h").exists() for i in range(base, base + count)):
            return base
    raise LabError(
        f"no {count} free lab link indices left (interfaces vfl<N>h); remove stale ones with `ip link del vfl<N>h`"
    )


def cgroup_view_argv(layout: CgroupLayout, argv: list[str]) -> list[str]:
    """`argv` with the cpu cgroup hierarchy mounted at its usual place first. `ip netns exec` mounts a fresh sysfs
    on /sys (in a mount namespace of its own), which hides /sys/fs/cgroup, so a lab board could not read its own
    CPU quota as a board in a container can (power/cpu_limit.py); this mounts it back, inside that namespace only.
    A failed mount is not fatal: the agent then runs without knowing its quota."""
    if layout.version == 1:
        where = f"/sys/fs/cgroup/{layout.cpu_root.name}"
        mount = (
            f"mount -t tmpfs lab-cgroups /sys/fs/cgroup && mkdir -p {where} && "
            f"mount -t cgroup -o {layout.cpu_root.name} cgroup {where}"
        )
    else:
        mount = "mount -t cgroup2 cgroup2 /sys/fs/cgroup"
    return ["sh", "-c", f'{{ {mount}; }} 2>/dev/null; exec "$@"', "lab-cgroup-view", *argv]


def add_listeners(broker: LocalBroker, hosts: list[str]) -> None:
    """The broker also listens on each board link's host address (same port), before it starts."""
    extra = "".join(f"listener {broker.port} {h}\n" for h in hosts)
    broker.conf_path.write_text(broker.conf_path.read_text() + extra)


class QuotaFleet(LocalFleet):
    def __init__(
        self, engines: Path, run_dir: Path, options: LocalFleetOptions | None = None, lab: LabOptions | None = None
    ) -> None:
        super().__init__(engines, run_dir, options)
        self.lab = lab or LabOptions()
        self.profile = link_profile(self.lab.profile)
        self.links: dict[str, BoardLink] = {}
        self.shaped: dict[str, ShapedLink] = {}
        self.quotas: dict[str, CpuQuota] = {}
        self._final: dict[str, dict[str, object]] = {}  # per agent: CPU used and throttling, read at teardown

    def cores_of(self, name: str) -> float:
        return self.lab.agent_cores.get(name, self.lab.cores)

    # Everything lab-side is set up inside _start_broker, so that LocalFleet.prepare registers the processes' stop
    # after it: teardown (last in, first out) stops the processes first, then relays, links, groups, the broker.
    def _start_broker(self) -> BrokerConfig:
        require_netns_tools()
        layout = detect_cgroups()
        base = self.lab.index_base or free_index_block(len(self.agents))
        tag = f"q{os.getpid() % 100000}"
        for i, name in enumerate(self.agents):
            link = BoardLink(f"{tag}-{name}", base + i)
            link.up()
            self._stack.callback(link.down)
            self.links[name] = link
        self.local_broker = LocalBroker(work_dir=self.run_dir / "broker")
        add_listeners(self.local_broker, [link.host_addr for link in self.links.values()])
        self._stack.callback(self.local_broker.close)
        self.local_broker.start()
        for name, link in self.links.items():
            shaped = ShapedLink(link, self.profile, self.local_broker.port, self.run_dir / "lab")
            self._stack.callback(shaped.remove)
            self.shaped[name] = shaped.apply()
        for name in self.agents:
            quota = CpuQuota(f"{tag}-{name}", self.cores_of(name), self.lab.period_us, layout)
            self._stack.callback(quota.remove)
            self.quotas[name] = quota.create()
            self._stack.callback(self._snapshot, name)  # runs before the group is removed
        return self.local_broker.config

    def _snapshot(self, name: str) -> None:
        quota = self.quotas[name]
        self._final[name] = {"cpu_s": round(quota.usage_s(), 3), **quota.throttling()}

    def spawn_agent(self, name: str) -> Child:
        """The agent inside its board: its cgroup, its namespace, connected through its link."""
        own = self.options.agent_engines.get(name)
        extra = [*self.options.agent_args.get(name, []), *(["--engines", str(own)] if own else [])]
        python = self.options.python or sys.executable
        pin = ["--cpu", str(self.agents.index(name) % len(os.sched_getaffinity(0)))] if self.lab.pin else []
        argv = [
            python,
            "-m",
            "vitfleet.cli",
            "agent",
            *self.common_args,
            "--board",
            name,
            "--threads",
            "1",
            "--broker",
            self.shaped[name].record.endpoint,
            *pin,
            *extra,
        ]
        quota = self.quotas[name]
        argv = quota.wrap_argv(self.links[name].exec_argv(cgroup_view_argv(quota.layout, argv)))
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        log_path = self.procs.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        child = Child(name, proc, log_path)
        self.procs.children[name] = child
        return child

    # ---- during the run -------------------------------------------------------------------------------------
    def set_cores(self, name: str, cores: float) -> None:
        """Change one board's CPU share while it runs."""
        self.quotas[name].set_cores(cores)

    def cpu_seconds(self, name: str) -> float:
        return self.quotas[name].usage_s()

    def lab_report(self) -> dict[str, object]:
        """Per board: the quota, CPU used and throttling (at teardown, or now while running), and the link as
        applied (the relay's measured hold times once it has stopped)."""
        boards = {}
        for name in self.agents:
            if name not in self.quotas:
                continue
            quota = self.quotas[name]
            used = self._final.get(name) or {"cpu_s": round(quota.usage_s(), 3), **quota.throttling()}
            boards[name] = {"quota": quota.describe(), **used, "link": self.shaped[name].record.as_dict()}
        return {
            "profile": self.profile.model_dump(),
            "period_us": self.lab.period_us,
            "pinned": self.lab.pin,
            "boards": boards,
            "host_side": "broker, aggregator, camera node and link relays on the host, no quota",
        }
