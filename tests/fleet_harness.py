"""A real fleet for the end-to-end tests: the one-machine LocalFleet (aggregator + K agents as `vitfleet`
subprocesses) on the tests' broker, real int8 ONNX Runtime engines (the engines tests' `tiny_engines`), and an
in-process camera node."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401 - fixtures used by fleet_engines

from vitfleet.agent.camera_node import CameraNode
from vitfleet.camera.sources import open_source
from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions
from vitfleet.fleet_config import FleetConfig


@pytest.fixture(scope="session")
def fleet_engines(tiny_engines: Path) -> Path:  # noqa: F811
    """The engines tests' int8 ONNX Runtime engines (built once per session, never modified)."""
    return tiny_engines


class Fleet(LocalFleet):
    """LocalFleet on the test's broker (which the test may restart), with in-process camera nodes."""

    def __init__(
        self,
        broker: LocalBroker,
        engines: Path,
        work: Path,
        deadline_ms: float | None = None,
        heal_after_s: float | None = None,
        agent_engines: dict[str, Path] | None = None,
        python: str | None = None,
        tweak: Callable[[FleetConfig], None] | None = None,
    ) -> None:
        # Healing off unless asked for: these tests measure the fixed placement (a lost board stays degraded).
        super().__init__(
            engines,
            work,
            LocalFleetOptions(
                broker=broker.config,
                deadline_ms=deadline_ms,
                heal_after_s=heal_after_s,
                log_level="info",
                stats_interval=0.5,
                online_timeout=60.0,
                agent_engines=agent_engines or {},
                python=python,
                tweak=tweak,
            ),
        )
        self.local_broker = broker
        self.agent_engines = self.options.agent_engines  # per-agent engines folders (default: the fleet's)

    def camera(self, uri: str, **kwargs: Any) -> CameraNode:
        assert self.broker is not None and self.config is not None, "start() the fleet first"
        return CameraNode(self.broker, self.config.name, "camera", open_source(uri), **kwargs)

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
            self.close()
