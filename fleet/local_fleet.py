"""One fleet on this machine: a broker, the aggregator and one agent per part as real `vitfleet` processes, a
live view of their topics, and the camera node when asked for — torn down in reverse order on exit.

The one boot behind `vitfleet demo` (fleet/demo.py), the bench (bench/fleet_run.py), the soak (bench/soak.py),
the fault script (bench/faults.py) and the tests (tests/fleet_harness.py): each used to write its own.

    with LocalFleet(engines, run_dir, camera_uri=uri) as fleet:
        summary = fleet.run_camera_process(run_dir / "camera.json", ["--frames", "300"])
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from vitfleet.agent.web.state import WebState
from vitfleet.engines.runtime.manifest import Manifest, read_manifest
from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet.processes import Child, ChildFailed, ProcessGroup
from vitfleet.fleet_config import (
    AggregatorConfig,
    BoardConfig,
    BrokerConfig,
    CameraConfig,
    CameraFeedConfig,
    FleetConfig,
)


def demo_fleet(
    num_parts: int,
    broker: BrokerConfig,
    engines_dir: Path,
    camera_uri: str,
    fps: float,
    log_path: Path,
    deadline_ms: float | None,
    max_in_flight: int = 2,
    heal_after_s: float | None = None,
    replan_hold_s: float | None = None,
) -> FleetConfig:
    """A one-machine fleet: agent<i> runs part i. Healing is off unless `heal_after_s` is given (the tests and
    the soak measure a fixed placement; `vitfleet demo` and bench/faults.py pass it)."""
    boards = [BoardConfig(name=f"agent{i}", roles=["agent"], part=i) for i in range(num_parts)]
    boards.append(BoardConfig(name="aggregator", roles=["aggregator"]))
    boards.append(BoardConfig(name="camera", roles=["camera"]))
    return FleetConfig(
        name="demo",
        engines=engines_dir.resolve(),
        broker=broker,
        boards=boards,
        camera=CameraConfig(uri=camera_uri, fps=fps if fps > 0 else 1000.0, loop=True, max_in_flight=max_in_flight),
        aggregator=AggregatorConfig(
            log=log_path.resolve(), deadline_ms=deadline_ms, heal_after_s=heal_after_s, replan_hold_s=replan_hold_s
        ),
    )


def fresh_prediction_log(run_dir: Path) -> Path:
    """run_dir/predictions.sqlite, with a previous run's log (and its WAL files) removed."""
    log_path = run_dir / "predictions.sqlite"
    for stale in (log_path, run_dir / "predictions.sqlite-wal", run_dir / "predictions.sqlite-shm"):
        stale.unlink(missing_ok=True)
    return log_path


def write_fleet_file(fleet: FleetConfig, run_dir: Path) -> Path:
    """The one-machine fleet as run_dir/fleet.yaml, the file every child process is started with."""
    fleet_file = run_dir / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet.model_dump(mode="json"), sort_keys=False))
    return fleet_file


def agent_command(common: list[str], name: str, index: int, extra: list[str] | None = None) -> list[str]:
    """`vitfleet agent` for agent<index> of a one-machine fleet: its own core, one thread."""
    return ["agent", *common, "--board", name, "--cpu", str(index), "--threads", "1", *(extra or [])]


@dataclass
class LocalFleetOptions:
    """How the one-machine fleet runs (what differs between the demo, the bench, the soak, the faults, the tests)."""

    camera_uri: str = "synthetic://"
    fps: float = 10.0
    deadline_ms: float | None = None
    max_in_flight: int = 2
    heal_after_s: float | None = None  # healing off unless asked for (fixed placements are measured)
    replan_hold_s: float | None = None  # re-planning for speed off unless asked for (same reason)
    broker: BrokerConfig | None = None  # an external broker; None: a private mosquitto on a free port
    log_level: str = "warning"
    stats_interval: float | None = None  # None: the processes' default
    online_timeout: float = 90.0
    with_frames: bool = False  # the view keeps the latest frame (the demo's OpenCV window)
    agent_engines: dict[str, Path] = field(default_factory=dict)  # agent -> its own engines folder
    agent_args: dict[str, list[str]] = field(default_factory=dict)  # agent -> more flags (e.g. a slowdown)
    python: str | None = None  # run the processes with this interpreter (a board-only venv)
    tweak: Callable[[FleetConfig], None] | None = None  # changes the fleet config before it is written
    cameras: list[CameraFeedConfig] = field(default_factory=list)  # several cameras (default: camera_uri alone)


class LocalFleet:
    def __init__(self, engines: Path, run_dir: Path, options: LocalFleetOptions | None = None) -> None:
        self.engines = engines.resolve()
        self.run_dir = run_dir
        self.options = options or LocalFleetOptions()
        self.manifest: Manifest = read_manifest(self.engines)
        self.agents = [f"agent{i}" for i in range(self.manifest.num_parts)]
        self._stack = ExitStack()
        self.local_broker: LocalBroker | None = None
        self.broker: BrokerConfig | None = None
        self.config: FleetConfig | None = None
        self.fleet_file = run_dir / "fleet.yaml"
        self.log_path = run_dir / "predictions.sqlite"
        self.procs = ProcessGroup(run_dir / "logs", *([self.options.python] if self.options.python else []))
        self.view: WebState | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> LocalFleet:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> LocalFleet:
        """Broker, fleet file, view, aggregator and agents; returns once every one of them is online."""
        try:
            self.prepare()
            self.spawn_aggregator()
            for name in self.agents:
                self.spawn_agent(name)
            self.wait_online(self.agents + ["aggregator"], self.options.online_timeout)
        except BaseException:
            self.close()
            raise
        return self

    def prepare(self) -> LocalFleet:
        """Everything but the processes: the broker, the fleet file and the view (a test that starts some
        processes its own way, e.g. in a network namespace, stops here)."""
        if self.view is not None:
            return self
        opts = self.options
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.broker = opts.broker or self._start_broker()
        self.log_path = fresh_prediction_log(self.run_dir)
        self.config = demo_fleet(
            self.manifest.num_parts,
            self.broker,
            self.engines,
            opts.camera_uri,
            opts.fps,
            self.log_path,
            opts.deadline_ms,
            opts.max_in_flight,
            opts.heal_after_s,
            opts.replan_hold_s,
        )
        self.config.cameras = list(opts.cameras)
        if opts.tweak is not None:
            opts.tweak(self.config)
        self.fleet_file = write_fleet_file(self.config, self.run_dir)
        self._stack.callback(self.procs.stop_all)
        self.view = WebState(
            self.broker, self.config.name, [b.name for b in self.config.boards], cameras=self.config.camera_names()
        ).start(wait=10.0)
        self._stack.callback(self.view.stop)
        if opts.with_frames:  # the demo's window draws the latest frame
            self._stack.enter_context(self.view.watching_frames())
        return self

    def _start_broker(self) -> BrokerConfig:
        self.local_broker = LocalBroker(work_dir=self.run_dir / "broker")
        self._stack.callback(self.local_broker.close)
        return self.local_broker.start().config

    def close(self) -> None:
        """Stop every process (SIGTERM: each publishes its last stats and `offline`), the view, then the broker."""
        self._stack.close()

    def on_close(self, callback: Callable[[], object]) -> None:
        """Run `callback` at teardown, before the processes stop (e.g. a web view watching this fleet)."""
        self._stack.callback(callback)

    def stop_processes(self) -> dict[str, int | None]:
        """Stop the fleet's processes but keep the broker and the view (to read their last messages); exit codes."""
        codes = self.procs.stop_all()
        time.sleep(0.2)  # let the view take delivery of the last stats
        return codes

    # ---- processes ----------------------------------------------------------------------------------------
    @property
    def common_args(self) -> list[str]:
        """The flags every process of this fleet gets."""
        args = ["--fleet", str(self.fleet_file), "--log-level", self.options.log_level]
        if self.options.stats_interval is not None:
            args += ["--stats-interval", str(self.options.stats_interval)]
        return args

    def spawn_aggregator(self) -> Child:
        return self.procs.spawn("aggregator", ["aggregator", *self.common_args, "--board", "aggregator"])

    def spawn_agent(self, name: str) -> Child:
        """(Re)start one agent: its own core, one thread, its own engines folder when it has one."""
        own = self.options.agent_engines.get(name)
        extra = [*self.options.agent_args.get(name, []), *(["--engines", str(own)] if own else [])]
        return self.procs.spawn(name, agent_command(self.common_args, name, self.agents.index(name), extra))

    def kill(self, name: str) -> int:
        """SIGKILL one process (a board lost without a goodbye); the wall time of the kill in ns."""
        proc = self.procs.children.pop(name).proc  # killed on purpose: not part of the clean shutdown
        killed_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return killed_ns

    def wait_online(self, boards: list[str], timeout: float) -> None:
        assert self.view is not None, "start() the fleet first"
        missing = self.view.wait_online(boards, timeout, alive=self.procs.check_alive)
        if missing:
            raise ChildFailed(
                f"{', '.join(missing)} did not come online within {timeout:.0f} s; see the logs in {self.procs.log_dir}"
            )

    def spawn_camera(self, summary: Path, args: list[str], name: str = "camera") -> Child:
        """The camera node as a process (`vitfleet camera`), writing its summary to `summary`."""
        summary.unlink(missing_ok=True)
        # The camera node reports in its summary, not in periodic stats: it takes no --stats-interval.
        common = ["--fleet", str(self.fleet_file), "--log-level", self.options.log_level]
        return self.procs.spawn(name, ["camera", *common, "--board", "camera", "--summary", str(summary), *args])

    def run_camera_process(
        self, summary: Path, args: list[str], name: str = "camera", timeout: float = 60.0
    ) -> dict[str, Any]:
        """Run the camera node process to its end (its own --frames/--duration) and return its summary; fails when
        a fleet process dies meanwhile or the camera overruns `timeout`."""
        child = self.spawn_camera(summary, args, name)
        deadline = time.monotonic() + timeout
        while child.proc.poll() is None:
            self.procs.check_alive([n for n in self.procs.children if n != name])
            if time.monotonic() > deadline:
                self.procs.stop(name)
                break
            time.sleep(0.1)
        if child.proc.returncode != 0 or not summary.exists():
            raise ChildFailed(f"camera ({name}) exited with code {child.proc.returncode}: {child.tail()}")
        # A camera that ran to its end is done, not dead: the next run's liveness checks must not trip on it.
        self.procs.children.pop(name, None)
        return json.loads(summary.read_text())
