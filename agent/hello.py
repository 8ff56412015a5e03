"""The agent's hello: what this board is (kind, arch, cores, memory, measured speed) and which engines it holds,
published retained on boards/<board>/hello once connected (vitfleet/hello_message.py)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from vitfleet.agent.speed_probe import matmul_gflops
from vitfleet.engines.runtime.manifest import Manifest
from vitfleet.hello_message import BoardHello


def memory_mb() -> int:
    try:
        import psutil

        return max(1, int(psutil.virtual_memory().total / 2**20))
    except Exception:  # noqa: BLE001 - psutil missing: the POSIX page count says the same
        return max(1, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20))


def held_engines(engines_dir: Path, manifest: Manifest | None, backend: str) -> dict[int, str]:
    """part -> engine file present here with the manifest's size (its sha256 is checked when it is loaded)."""
    if manifest is None:
        return {}
    held = {}
    for entry in manifest.entries:
        path = Path(engines_dir) / entry.file
        if (
            entry.role == "part"
            and entry.backend == backend
            and entry.part is not None
            and path.is_file()
            and path.stat().st_size == entry.size
        ):
            held[entry.part] = entry.file
    return held


def board_hello(
    board: str,
    kind: str,
    engines_dir: Path,
    manifest: Manifest | None,
    backend: str,
    host: str | None,
    speed: float | None,
) -> BoardHello:
    held = held_engines(engines_dir, manifest, backend)
    return BoardHello(
        board=board,
        kind=kind,
        arch=platform.machine() or "unknown",  # type: ignore[arg-type]
        cores=os.cpu_count() or 1,
        memory_mb=memory_mb(),
        speed=speed,
        host=host,
        bundle_id=manifest.bundle_id if manifest else None,
        parts=sorted(held),
        engines=[held[p] for p in sorted(held)],
        ts=time.time(),
    )


def measure_speed(runs: int = 6, seconds: float = 0.05) -> float | None:
    """GFLOP/s of deploy's benchmark on this board, the best of a few short runs (a start-up neighbour that takes
    the CPU for a moment must not make the board look slow for good); None when it cannot run."""
    try:
        return round(max(matmul_gflops(seconds)["gflops"] for _ in range(runs)), 2)
    except Exception:  # noqa: BLE001 - numpy refused (no BLAS): the hello goes out without a speed
        return None
