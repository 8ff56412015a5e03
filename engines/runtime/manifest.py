"""manifest.json: the sidecar that describes every engine file of one target (never bytes inside a plan).

Per file: role (part / fusion / teacher), part index, precision, backend, I/O names, shapes and dtypes,
size and sha256 of the file, sha256 of the ONNX it was made from, and for TensorRT plans the TensorRT
version and GPU compute capability they were built with. Agents look their engine up here and verify the
sha256 before loading, so a truncated, altered or foreign file is refused instead of loaded.

numpy/pydantic only: this runs on the boards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vitfleet.choices import BackendName, EnginePrecision, PrecisionName, TargetName, choice_values
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.file_digest import sha256_file
from vitfleet.preprocessing import Preprocessing
from vitfleet.versioned_card import read_versioned_card

MANIFEST_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Precision, backend and target are the fleet's own choices (vitfleet/choices.py), kept as plain strings in the
# JSON; Role here is an engine file's role.
Role = Literal["part", "fusion", "teacher"]
PRECISIONS: tuple[str, ...] = choice_values(EnginePrecision)  # widest first


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int | str] = Field(description="ints, or a symbolic name (e.g. 'batch') for a dynamic axis")
    dtype: str = Field(description="numpy dtype name, e.g. float32")


class EngineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    part: int | None = Field(None, ge=0, description="part index for role 'part', else None")
    precision: PrecisionName
    backend: BackendName
    file: str = Field(description="file name inside the engines folder")
    size: int = Field(ge=0, description="bytes; a shorter file is reported as truncated")
    sha256: str
    source_onnx_sha256: str | None = Field(
        None, description="sha256 of the ONNX this file was made from (None for an fp32 export: it is the source)"
    )
    source_weights_sha256: str | None = Field(None, description="sha256 of the bundle weights an export came from")
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    tensorrt_version: str | None = None
    compute_capability: str | None = None

    @property
    def label(self) -> str:
        who = f"part {self.part}" if self.role == "part" else self.role
        return f"{who} {self.precision} {self.backend} ({self.file})"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = MANIFEST_FORMAT_VERSION
    bundle_id: str
    method: str
    class_names: list[str]
    preprocessing: Preprocessing
    dataset: str | None = Field(
        None,
        description="the bundle's data set (bundle.json `dataset`): what the demo and "
        "`--accuracy` replay; None in manifests built before it was kept",
    )
    num_parts: int = Field(gt=0)
    feature_dims: list[int]
    target: TargetName = "cpu"
    precision: PrecisionName = Field("int8", description="the precision agents load when they do not ask for one")
    entries: list[EngineEntry] = []

    def lookup(
        self, role: Role, part: int | None = None, backend: BackendName = "onnxruntime", precision: str | None = None
    ) -> EngineEntry:
        """The entry an agent loads. Without an explicit precision: parts at the manifest's precision; the
        fusion head and teacher (kept fp32 in ONNX, fp16 at most as plans) at the lowest one present."""
        found = [e for e in self.entries if e.role == role and e.part == part and e.backend == backend]
        if precision:
            wanted = [precision]
        else:
            wanted = [self.precision] if role == "part" else [self.precision, "fp16", "fp32"]
        for p in wanted:
            for e in found:
                if e.precision == p:
                    return e
        who = f"part {part}" if role == "part" else role
        have = ", ".join(sorted({f"{e.precision}/{e.backend}" for e in found})) or "none"
        hint = (
            "build it on the Jetson with: vitfleet engines build --backend tensorrt --engines DIR --precision P"
            if backend == "tensorrt"
            else "rebuild with: vitfleet engines build --bundle BUNDLE --out DIR"
        )
        raise EngineError(f"the manifest has no {'/'.join(wanted)} {backend} engine for {who} (it has: {have}); {hint}")

    def replace_entry(self, entry: EngineEntry) -> None:
        """Add `entry`, dropping an older entry for the same role/part/precision/backend."""
        self.entries = [
            e
            for e in self.entries
            if (e.role, e.part, e.precision, e.backend) != (entry.role, entry.part, entry.precision, entry.backend)
        ] + [entry]


def read_manifest(folder: Path) -> Manifest:
    return read_versioned_card(
        Path(folder) / MANIFEST_NAME,
        Manifest,
        MANIFEST_FORMAT_VERSION,
        EngineError,
        "manifest",
        f"build engines first: vitfleet engines build --bundle BUNDLE --out {folder}",
        "rebuild the engines (vitfleet engines build)",
    )


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2))
    tmp.replace(folder / MANIFEST_NAME)
    return folder / MANIFEST_NAME


def verified_path(folder: Path, entry: EngineEntry) -> Path:
    """The entry's file, after checking it exists, is complete and has the recorded sha256."""
    path = Path(folder) / entry.file
    if not path.exists():
        raise EngineError(f"{entry.label}: {path} is missing; copy the whole engines folder or rebuild it")
    size = path.stat().st_size
    if size < entry.size:
        raise EngineError(
            f"{entry.label}: {path} is truncated ({size} of {entry.size} bytes); "
            "the copy was interrupted: copy it again or rebuild the engines"
        )
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise EngineError(
            f"{entry.label}: {path} has sha256 {actual[:12]}… but the manifest expects "
            f"{entry.sha256[:12]}…; the file was altered or belongs to another build: rebuild the engines"
        )
    return path
