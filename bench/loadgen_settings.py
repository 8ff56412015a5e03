"""What one `vitfleet bench loadgen` run is asked to do: scenarios, modes, their short-run defaults, the settings.

Its own module so the runner (bench/loadgen.py) and the report (bench/loadgen_report.py) both read it without
importing each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vitfleet.choices import EncodingName
from vitfleet.errors import UserError

Scenario = Literal["singlestream", "multistream", "offline"]
Mode = Literal["performance", "accuracy"]
SCENARIOS: tuple[str, ...] = ("singlestream", "multistream", "offline")
MODES: tuple[str, ...] = ("performance", "accuracy")
LOADGEN_PIN = "mlcommons-loadgen==6.0.17"


class LoadgenInputError(UserError):
    """A bad option or a missing input of `vitfleet bench loadgen`; the message says how to fix it."""


class ScenarioDefaults(BaseModel):
    min_duration_s: float
    min_queries: int


# Short runs (each <= ~60 s on the demo fleet, 2 shared cores). SingleStream/MultiStream: enough queries for
# LoadGen's early-stopping estimate of the percentile (with fewer, MultiStream is INVALID: "need to process at least
# 662 queries for early stopping"). Offline: one query whose size LoadGen derives from
# expected_qps x min_duration, so min_queries only has to stay below it.
DEFAULTS: dict[str, ScenarioDefaults] = {
    "singlestream": ScenarioDefaults(min_duration_s=10.0, min_queries=1024),  # MLPerf's own minimum
    "multistream": ScenarioDefaults(min_duration_s=10.0, min_queries=662),  # the fewest for a p99 estimate
    "offline": ScenarioDefaults(min_duration_s=10.0, min_queries=1),
}


class LoadgenSettings(BaseModel):
    """One LoadGen run; None means the scenario's default."""

    model_config = ConfigDict(extra="forbid")

    scenario: Scenario
    mode: Mode = "performance"
    engines: Path | None = None
    bundle: Path | None = None
    work_dir: Path = Path("runs/loadgen")  # the fleet's run folder (logs, fleet.yaml, prediction log)
    demo_dir: Path = Path("runs/demo")  # where the demo bundle and its engines are cached
    results: Path = Path("bench/results")
    out: Path | None = None
    count: int | None = Field(None, ge=1)  # images in the sample library (default: the whole test split)
    min_duration_s: float | None = Field(None, gt=0)
    min_queries: int | None = Field(None, ge=1)
    max_duration_s: float = Field(120.0, gt=0)  # LoadGen stops issuing after this, whatever else it wanted
    samples_per_query: int = Field(8, ge=1)  # MultiStream
    # SingleStream/MultiStream: sizes LoadGen's query schedule. Low on purpose: a fleet faster than this runs out
    # of pre-generated queries before the min duration (INVALID, "min duration not met"); a slower one only stops
    # early once min duration and min queries are met.
    expected_latency_ms: float = Field(0.5, gt=0)
    expected_qps: float = Field(400.0, gt=0)  # Offline: samples in its one query = qps x min duration
    max_in_flight: int = Field(2, ge=1)  # the camera's admission credits (camera.max_in_flight)
    encoding: EncodingName = "raw"
    lost_after_s: float = Field(10.0, gt=0)
    command: str = "vitfleet bench loadgen"

    @property
    def name(self) -> str:
        return self.scenario + ("-accuracy" if self.mode == "accuracy" else "")

    @property
    def report_path(self) -> Path:
        return self.out or self.results / f"loadgen-{self.name}.json"

    @property
    def log_dir(self) -> Path:
        """LoadGen's logs beside the report: bench/results/loadgen/<report name without loadgen- and .json>/."""
        stem = self.report_path.stem
        return self.report_path.parent / "loadgen" / (stem[len("loadgen-") :] if stem.startswith("loadgen-") else stem)
