"""What an agent does with a fleet plan: which parts to load, which to drop, and what to report back.

Loading happens on the agent's own plan thread (agent/board_agent.py), never on the MQTT network thread or the
inference thread: a fetch and a session start take a while, and frames keep flowing meanwhile. A part that
cannot be loaded (no file, sha256 mismatch, ONNX Runtime refuses it) is reported in the agent's stats as
`failed_parts` and the agent keeps running the rest; the coordinator then places that part elsewhere, or
leaves it unplaced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitfleet.agent.engine_fetch import ensure_local
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import Manifest

log = logging.getLogger("vitfleet.agent")


def rss_mb() -> float:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except Exception:  # noqa: BLE001 - psutil missing or refused: the estimate is used instead
        return 0.0


class PartLoader:
    """Loads part engines of one engines folder (fetching missing files), measuring each session's memory."""

    def __init__(self, engines_dir: Path, manifest: Manifest, backend: str = "onnxruntime", threads: int = 1) -> None:
        self.engines_dir, self.manifest, self.backend, self.threads = Path(engines_dir), manifest, backend, threads

    def load(self, part: int, engines_url: str | None) -> tuple[Any, float]:
        """(engine, resident MB its session added). Raises EngineError (with the reason) when it cannot."""
        from vitfleet.engines.runtime.backends import load_part_engine

        if not 0 <= part < self.manifest.num_parts:
            raise EngineError(
                f"the plan names part {part} but these engines have parts 0..{self.manifest.num_parts - 1}"
            )
        entry = self.manifest.lookup("part", part, self.backend)
        ensure_local(self.engines_dir, entry, engines_url)
        before = rss_mb()
        engine = load_part_engine(self.engines_dir, part, self.backend, self.threads)
        return engine, max(0.0, rss_mb() - before)


@dataclass
class PlanOutcome:
    engines: dict[int, Any]  # part -> engine, the parts to run from now on
    failed: dict[int, str] = field(default_factory=dict)
    mem_mb: dict[int, float] = field(default_factory=dict)


def follow(
    wanted: list[int], hosted: dict[int, Any], loader: PartLoader, engines_url: str | None, warm_up: Any
) -> PlanOutcome:
    """Keep the wanted parts already hosted, load the others (warm_up(engine) before they go live)."""
    outcome = PlanOutcome(engines={})
    for part in sorted(set(wanted)):
        if part in hosted:
            outcome.engines[part] = hosted[part]
            continue
        try:
            engine, mem = loader.load(part, engines_url)
            warm_up(engine)
        except EngineError as exc:
            outcome.failed[part] = str(exc)
            log.error("cannot run part %d as the plan asks: %s", part, exc)
            continue
        outcome.engines[part] = engine
        outcome.mem_mb[part] = round(mem, 1)
        log.info("part %d loaded (%.1f MB) and running", part, mem)
    return outcome
