"""The fleet's fixed choices, each defined once as a str Enum (extension points -- methods, camera sources, board
kinds, power meters -- take their choices from their registries instead).

The CLI takes the Enums as options, so `--help` lists them ([cpu|pi|jetson]) and a wrong value is typer's one-line
usage error (exit 2); commands pass `.value` on. Models and dataclasses that keep plain strings (engine manifests,
fleet.yaml, the board-kind table) use the Literal derived from the same Enum (`TargetName`, ...): validated
against the Enum's values, stored and written as the bare strings, so JSON and f-strings see "int8", never
"EnginePrecision.int8".

Pure stdlib: the board CLI imports this without torch.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal


class Partition(str, Enum):
    random = "random"
    confusion = "confusion"


class LrSchedule(str, Enum):
    """`decompose --part-lr-schedule`: how the part learning rate falls after its warm-up."""

    cosine = "cosine"
    linear = "linear"
    constant = "constant"


class Target(str, Enum):
    cpu = "cpu"
    pi = "pi"
    jetson = "jetson"


class EnginePrecision(str, Enum):
    """An engine file's precision (`engines check --precision`)."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class BuildPrecision(str, Enum):
    """`engines build --precision`: one engine precision, or all (fp16 + int8 side by side)."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"
    all = "all"


class ComputePrecision(str, Enum):
    """The teacher's training forward pass (`teacher --precision`)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class Backend(str, Enum):
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class Encoding(str, Enum):
    raw = "raw"
    jpeg = "jpeg"


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def choice_values(choice: type[Enum]) -> tuple[str, ...]:
    """The choice's values in declaration order: the strings that go on disk, on the wire and in messages."""
    return tuple(member.value for member in choice)


def _literal(choice: type[Enum]) -> Any:
    # typing.Literal of the Enum's values, built at import: pydantic validates it as if the values were spelt out.
    return Literal[choice_values(choice)]


TargetName = _literal(Target)  # an engines folder's target (what it was built for)
BackendName = _literal(Backend)  # the runtime an engine file is for
PrecisionName = _literal(EnginePrecision)  # an engine file's precision
PartitionName = _literal(Partition)  # how classes are split among the parts
LrScheduleName = _literal(LrSchedule)
ComputePrecisionName = _literal(ComputePrecision)  # the training forward pass
EncodingName = _literal(Encoding)  # how a camera frame travels
