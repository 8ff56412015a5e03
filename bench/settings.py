"""What one benchmark run measures and where it reads and writes: full and quick presets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vitfleet.decompose.methods import MethodName, method_names

Precision = Literal["fp32", "int8"]  # the precisions the bench compares


class BenchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quick: bool = False
    teacher: Path | None = Field(None, description="teacher folder; quick mode trains a tiny one when absent")
    runs: Path = Path("runs")
    out: Path = Path("bench/results")
    report: Path = Path("docs/benchmarks.md")
    parts: list[int] = [2, 4, 8]
    methods: list[MethodName] = Field(default_factory=method_names)  # every registered method
    precisions: list[Precision] = ["fp32", "int8"]
    test_images: int | None = None  # None = the whole test set
    latency_runs: int = 300
    latency_warmup: int = 30
    energy_seconds: float = 2.0  # per engine, long enough for a 10 Hz meter to integrate
    lockstep_frames: int = 500  # real fleet, one frame in flight: unloaded end-to-end latency
    throughput_frames: int = 1500  # real fleet, pipelined
    max_in_flight: int = 2  # one frame in inference, one waiting: agents keep only the newest
    real_fleet_max_parts: int = 2  # K above this (more agents than cores) gets the computed figure only
    calib_images: int = 256
    # Bundles the bench creates itself (K=2 by default; K=4 is expected under --runs already).
    train_limit: int | None = 30000
    part_epochs: int = 4
    fusion_epochs: int = 10
    compact_epochs: int = 7
    compact_train_limit: int | None = None
    # quick mode only: the tiny teacher
    quick_teacher_images: int = 0
    quick_teacher_epochs: int = 0
    quick_part_budget: float = 0.2
    core: int = -1  # the core isolated measurements are pinned to (-1 = the last one)
    command: str = "vitfleet bench"


def quick_settings(**overrides: object) -> BenchSettings:
    """A few minutes on 2 cores: tiny teacher and bundles, few images, frames and runs."""
    base = dict(
        quick=True,
        parts=[2, 4],
        out=Path("runs/bench-quick/results"),
        report=Path("runs/bench-quick/benchmarks.md"),
        runs=Path("runs/bench-quick"),
        test_images=300,
        latency_runs=50,
        latency_warmup=5,
        energy_seconds=0.5,
        lockstep_frames=30,
        throughput_frames=60,
        calib_images=16,
        train_limit=1000,
        part_epochs=1,
        fusion_epochs=2,
        compact_epochs=1,
        compact_train_limit=1000,
        quick_teacher_images=1000,
        quick_teacher_epochs=1,
    )
    base.update(overrides)
    return BenchSettings.model_validate(base)
