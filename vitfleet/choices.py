"""The CLI's fixed-choice options as str Enums (extension points -- methods, camera sources -- take their choices
from their registries instead), so `--help` lists them ([devit|edvit]) and a wrong value is
typer's one-line usage error (exit 2). Commands pass `.value` on: everything downstream keeps plain strings.

Pure stdlib: the board CLI imports this without torch.
"""

from __future__ import annotations

from enum import Enum


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
