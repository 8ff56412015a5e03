"""Fixtures of the reliability tests: a K = 4 bundle and engines, a fleet that is always torn down,
an availability recorder.

The K = 4 bundle and its int8 engines (a four-board fleet) are built with the engines tests' own tiny-bundle recipe (bundle_fixture.build_tiny_bundle: real training on a
Fashion-MNIST slice, fusion trained with part dropout) and a four-way class partition. The recipe reads the
partition from its module constant, so it is swapped for the duration of the build and restored after.

This module holds no tests; its name follows the reliability files' prefix so it stays with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bundle_fixture
import pytest
from fleet_harness import Fleet

from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.topics import Topics

PARTITION_K4 = [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]


def build_k4_bundle(out: Path) -> Path:
    saved = bundle_fixture.PARTITION
    bundle_fixture.PARTITION = PARTITION_K4
    try:
        return bundle_fixture.build_tiny_bundle(out, steps=150)
    finally:
        bundle_fixture.PARTITION = saved


def build_k4_engines(out: Path) -> Path:
    from vitfleet.engines.build.from_bundle import build_engines

    bundle = out.parent / (out.name + "_bundle")
    if not (bundle / "bundle.json").exists():
        build_k4_bundle(bundle)
    if not (out / "manifest.json").exists():
        build_engines(
            bundle, out, precision="int8", target="pi", calib_images=128, export_teacher=False, reference_images=200
        )
    return out


@pytest.fixture(scope="session")
def k4_engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_k4_engines(tmp_path_factory.getbasetemp() / "k4_engines_int8")


# ---- a fleet that is always torn down ------------------------------------------------------------------------
@contextmanager
def running_fleet(broker, engines: Path, work: Path, deadline_ms: float | None = 300.0) -> Iterator[Fleet]:
    """A started fleet_harness.Fleet whose processes are stopped even when start() or the test fails."""
    with Fleet(broker, engines, work, deadline_ms=deadline_ms) as fleet:
        yield fleet


def spawn_agent(fleet: Fleet, name: str) -> None:
    """(Re)start one agent process exactly as Fleet.start does."""
    fleet.spawn_agent(name)


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class AvailabilityLog:
    """Every boards/+/available message, in arrival order with its arrival time (retained ones included)."""

    def __init__(self, broker_config, fleet_name: str) -> None:
        self.topics = Topics(fleet_name)
        self.events: list[tuple[float, str, str]] = []
        self.link = MqttLink(
            broker_config, fleet_name, "test", "availability-log", self._on, [(self.topics.all_boards("available"), 1)]
        )

    def _on(self, topic: str, payload: bytes) -> None:
        where = self.topics.board_of(topic)
        if where:
            self.events.append((time.time(), where[0], bytes(payload).decode(errors="replace")))

    def latest(self, board: str, since: float = 0.0) -> str | None:
        states = [s for t, b, s in self.events if b == board and t >= since]
        return states[-1] if states else None

    def __enter__(self) -> AvailabilityLog:
        self.link.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.stop()
