"""What the seed-scale benchmark measures: the papers' teachers (ViT-B/16, DeiT-S/16 at 224² RGB), untrained.

`make bench SCALE=seed` = `python -m vitfleet.bench.seed_scale`. Every step is cached under `runs` keyed by its inputs,
so a re-run only measures. `tiny_seed_settings` is the same path at toy size for the test suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vitfleet.bench.settings import Precision
from vitfleet.decompose.methods import MethodName, method_names

UNTRAINED_LABEL = "untrained: latency, size and bytes only — no accuracy"


class SeedTeacher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timm_name: str
    label: str
    timm_kwargs: dict[str, Any] = {}


class SeedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: Path = Path("runs/seed")
    out: Path = Path("bench/results/seed.json")
    report: Path = Path("docs/benchmarks.md")
    readme: Path | None = Path("README.md")  # its "At the papers' scale" lines, between the seed-readme markers
    teachers: list[SeedTeacher] = [
        SeedTeacher(timm_name="vit_base_patch16_224", label="ViT-B/16"),
        SeedTeacher(timm_name="deit_small_patch16_224", label="DeiT-S/16"),
    ]
    # ViT-Tiny/16 at 224², random-init: the model the published board figures (NetsPresso) were taken with.
    reference: SeedTeacher = SeedTeacher(timm_name="vit_tiny_patch16_224", label="ViT-Ti/16")
    image_size: int = 224
    classes: int = 10
    train_per_class: int = 4
    test_per_class: int = 10  # also the frames the real fleet replays (classes x this)
    parts: list[int] = [2, 4, 8]
    methods: list[MethodName] = Field(default_factory=method_names)  # every registered method
    precisions: list[Precision] = ["fp32", "int8"]
    part_budget: dict[str, float] = Field(
        default_factory=dict, description="method -> fraction of the teacher's params per part (default: the kit's)"
    )
    importance_batch: int = 4  # images per Taylor-importance batch (a ViT-B backward is heavy)
    importance_batches: int = 1
    calib_images: int = 8  # int8 calibration images per engine
    teacher_int8: bool = True  # also quantize the teacher: the int8-vs-int8 ratio beside the fp32 one
    latency_seconds: float = 1.5  # timed budget per engine (after warm-up) ...
    latency_min_runs: int = 10  # ... but at least this many runs ...
    latency_max_runs: int = 200  # ... and at most this many
    latency_warmup: int = 3
    jpeg_quality: int = 90
    real_fleet_parts: int = 2  # the K that runs unquotaed over MQTT (K = 2 agents on the 2 cores)
    real_fleet_precisions: list[Precision] = ["int8"]
    lockstep_frames: int = 100
    # The lockstep phase is paced slower than the fleet answers: unpaced, the camera node stamps a frame before it
    # waits for the previous frame's answer, and that wait (~ one inference) would count as frame hop.
    lockstep_fps: float = 8.0
    pipelined_frames: int = 100
    max_in_flight: int = 2
    # Measured lab fleets (lab/quota_fleet.py, needs root): each agent its own cgroup quota and network namespace
    # with the `lab_profile` link; the teacher as one board under the same quota. q(K) = min(lab_cores,
    # (cores - lab_host_cores) / K): the host keeps `lab_host_cores` for broker, aggregator, camera and relays.
    lab_fleet_parts: list[int] = [2, 4, 8]
    lab_teachers: list[str] | None = None  # teacher labels with lab fleets (None: all)
    lab_cores: float = 0.35
    lab_host_cores: float = 0.6
    lab_profile: str = "lan"
    lab_period_us: int | None = None  # None: the shortest CFS period for the quota (lab/cpu_quota.py)
    lab_lockstep_frames: int = 60
    lab_pipelined_frames: int = 60
    lab_quota_timing_runs: int = 8  # runs per mode of an engine timed alone inside the quota
    lan_mbit_s: float = 100.0  # projection assumption: LAN bandwidth ...
    lan_hop_ms: float = 1.0  # ... plus this per hop (switch, stack, MQTT broker)
    size_target: float = 1 / 30  # largest int8 board <= this x the teacher's fp32 bytes
    feature_target_bytes: int = 512  # float16 features per board per frame (the message adds 72 B)
    # The measured ViT-B/16 K=4 int8 fleet over the int8 teacher as one board, same quota.
    measured_goal: dict[str, float] = {"edvit": 8.0, "devit": 10.0}
    core: int = -1  # isolated timings pinned here
    command: str = "python -m vitfleet.bench.seed_scale"

    def budget(self, method: str) -> float | None:
        return self.part_budget.get(method)

    def lab_cores_for(self, parts: int, cores: int) -> float:
        """Each agent's quota in a K-board lab fleet: all agents plus the host side fit `cores` without contention."""
        return round(min(self.lab_cores, (cores - self.lab_host_cores) / parts), 4)


def tiny_seed_settings(runs: Path, **overrides: Any) -> SeedSettings:
    """The seed path at toy size for tests: a deit_tiny-shaped model at 64², K = 2, seconds not minutes."""
    tiny = {"img_size": 64, "depth": 2}
    base: dict[str, Any] = dict(
        runs=runs,
        out=runs / "seed.json",
        report=runs / "benchmarks.md",
        readme=runs / "README.md",
        teachers=[SeedTeacher(timm_name="deit_tiny_patch16_224", label="DeiT-Ti/16 @64²", timm_kwargs=tiny)],
        reference=SeedTeacher(timm_name="vit_tiny_patch16_224", label="ViT-Ti/16 @64²", timm_kwargs=tiny),
        image_size=64,
        classes=4,
        train_per_class=2,
        test_per_class=3,
        parts=[2],
        calib_images=2,
        latency_seconds=0.05,
        latency_min_runs=3,
        latency_max_runs=20,
        latency_warmup=1,
        lockstep_frames=12,
        pipelined_frames=12,
        lab_fleet_parts=[2],
        lab_lockstep_frames=8,
        lab_pipelined_frames=8,
        lab_quota_timing_runs=3,
        command="tests/test_bench_seed.py",
    )
    base.update(overrides)
    return SeedSettings.model_validate(base)
