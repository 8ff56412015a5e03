"""`broker`: a real mosquitto on a free loopback port, one per test (started in ~50 ms).

Uses the same LocalBroker the demo uses (set_tcp_nodelay, raised max_queued_messages).
The fixture object can be restarted (`broker.restart()`) on the same port.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vitfleet.fleet.local_broker import LocalBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    b = LocalBroker(work_dir=tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.close()


def wait_until(cond: Callable[[], object], timeout: float = 3.0) -> bool:
    """Poll cond until it is truthy or timeout passes; every wait in the fleet tests is bounded by this."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())
