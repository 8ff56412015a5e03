"""A real fleet for the end-to-end tests: aggregator + K agents as `vitfleet` subprocesses on a real broker,
real int8 ONNX Runtime engines (the engines tests' `tiny_engines`), and an in-process camera node."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from vitfleet.agent.camera_node import CameraNode
from vitfleet.agent.demo import demo_fleet
from vitfleet.agent.fleet_view import FleetView
from vitfleet.agent.local_broker import LocalBroker
from vitfleet.agent.processes import ProcessGroup
from vitfleet.camera.sources import open_source
from vitfleet.engines.manifest import read_manifest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401 - fixtures used by fleet_engines


@pytest.fixture(scope="session")
def fleet_engines(tiny_engines: Path) -> Path:  # noqa: F811
    """The engines tests' int8 ONNX Runtime engines (built once per session, never modified)."""
    return tiny_engines


class Fleet:
    def __init__(self, broker: LocalBroker, engines: Path, work: Path, deadline_ms: float | None = None,
                 heal_after_s: float | None = None, agent_engines: dict[str, Path] | None = None,
                 python: str | None = None) -> None:
        self.broker, self.engines, self.work = broker, engines, work
        self.manifest = read_manifest(engines)
        self.log_path = work / "predictions.sqlite"
        # Healing off unless asked for: these tests measure the fixed placement (a lost board stays degraded).
        self.config = demo_fleet(self.manifest.num_parts, broker.config, engines, "synthetic://", 10.0,
                                 self.log_path, deadline_ms, heal_after_s=heal_after_s)
        self.fleet_file = work / "fleet.yaml"
        self.fleet_file.write_text(yaml.safe_dump(self.config.model_dump(mode="json")))
        self.procs = ProcessGroup(work / "logs", *([python] if python else []))
        self.agents = [f"agent{i}" for i in range(self.manifest.num_parts)]
        self.view = FleetView(broker.config, self.config.name)
        self.agent_engines = agent_engines or {}   # per-agent engines folders (default: the fleet's)

    def start(self, timeout: float = 60.0) -> "Fleet":
        self.view.start()
        self.procs.spawn("aggregator", ["aggregator", *self.common_args, "--board", "aggregator"])
        for name in self.agents:
            self.spawn_agent(name)
        missing = self.view.wait_online(self.agents + ["aggregator"], timeout, alive=self.procs.check_alive)
        assert not missing, f"{missing} not online; logs in {self.procs.log_dir}"
        return self

    @property
    def common_args(self) -> list[str]:
        return ["--fleet", str(self.fleet_file), "--log-level", "info", "--stats-interval", "0.5"]

    def spawn_agent(self, name: str) -> None:
        """(Re)start one agent process, on its own engines folder when it has one."""
        own = self.agent_engines.get(name)
        self.procs.spawn(name, ["agent", *self.common_args, "--board", name, "--cpu", str(self.agents.index(name)),
                                *(["--engines", str(own)] if own else [])])

    def camera(self, uri: str, **kwargs: Any) -> CameraNode:
        return CameraNode(self.broker.config, self.config.name, "camera", open_source(uri), **kwargs)

    def run_camera(self, uri: str, **kwargs: Any) -> tuple[CameraNode, dict[str, Any]]:
        node = self.camera(uri, **kwargs)
        return node, node.run()

    def run_camera_in_background(self, uri: str, **kwargs: Any) -> tuple[CameraNode, threading.Thread]:
        node = self.camera(uri, **kwargs)
        thread = threading.Thread(target=lambda: setattr(node, "result", node.run()), daemon=True)
        thread.start()
        return node, thread

    def stop(self) -> dict[str, int | None]:
        try:
            return self.procs.stop_all()
        finally:
            self.view.stop()
