"""The board-kind registry: one record per kind of board, and the one place that knows about kinds.

Every place that needs to know something about a kind of board asks here: fleet.yaml's `kind:` values,
the engine target and default precision deploy builds for it, its provisioning script, how `vitfleet power`
recognises it from the device tree, its rough power draw for the psutil estimate, and its typical speed for
boards that were never profiled. Adding a kind is one `register_board_kind(KindSpec(...))`: the kit's own are
registered below; one from outside the kit is loaded as a plugin (vitfleet/plugins.py) before fleet.yaml is
read. Pure stdlib: boards import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitfleet.choices import (
    Backend,
    BackendName,
    EnginePrecision,
    PrecisionName,
    Target,
    TargetName,
    choice_values,
)
from vitfleet.registry import HYPHENATED, Registry

Role = Literal["agent", "aggregator", "camera", "broker"]  # what a board runs (fleet.yaml `roles:`)

# The unit of BoardConfig.speed everywhere (placement, decompose's sizing, the coordinator): GFLOP/s of
# `vitfleet deploy profile`'s benchmark (a 256x256 float32 matmul on the board's configured threads).
SPEED_UNIT = "GFLOP/s"


@dataclass(frozen=True)
class KindSpec:
    name: str  # fleet.yaml `kind:`
    target: TargetName
    precision: PrecisionName  # default engine precision (fleet.yaml `precision:` overrides per board)
    backend: BackendName  # TensorRT plans are built on the Jetson itself; ONNX Runtime elsewhere
    provision_script: str  # firmware_scripts/templates/<script>; "" installs no apt packages
    model_names: tuple[str, ...]  # substrings of /proc/device-tree/model that identify it
    typical_gflops: float  # speed of an unprofiled board (rough, one thread; `deploy profile` measures)
    idle_w: float  # power estimate: board draw at idle ...
    active_w_per_core: float  # ... and the extra per fully busy core
    power_basis: str  # where those figures come from
    # What its OS runs, for wheels deploy downloads on the workstation for a board without internet
    # (fleet.yaml `offline: true`); None: unknown (a box you manage yourself), so no wheels can be chosen for it.
    arch: str | None = None  # `uname -m`
    python: str = "3.11"  # the OS's python3 (Pi OS / Debian bookworm 3.11, JetPack 6 / Ubuntu 22.04 3.10)


# fleet.yaml's `kind:` and a CLI word.
_KINDS: Registry[KindSpec] = Registry(
    "board kind", lambda k: k.name, HYPHENATED, "lower-case letters and digits joined by hyphens"
)


def register_board_kind(spec: KindSpec) -> KindSpec:
    """Add a kind (or replace the one of the same name, keeping its place). Registration order is detection
    order: the first kind whose model name matches the device tree wins, so a kind whose model names contain
    another's must be registered before it."""
    # A dataclass checks no types: a mistyped target would only surface when deploy builds engines for it.
    for field, value, choice in (
        ("target", spec.target, Target),
        ("precision", spec.precision, EnginePrecision),
        ("backend", spec.backend, Backend),
    ):
        if value not in choice_values(choice):
            raise ValueError(
                f"board kind {spec.name!r}: {field} {value!r} is not one of {', '.join(choice_values(choice))}"
            )
    return _KINDS.register(spec)


# In detection order, built-ins first.
board_kind = _KINDS.require  # a one-sentence UserError naming the kinds
find_board_kind = _KINDS.get  # None for an unknown name
board_kind_names = _KINDS.names
board_kinds = _KINDS.records
known_board_kind = _KINDS.known  # a pydantic validator's check


# Order matters for detection: the first kind whose model name matches wins (Orin Nano must not read as Nano).
# typical_gflops: order-of-magnitude single-thread NEON/AVX matmul figures for the core type, not measured here;
# they only keep an unprofiled board comparable with profiled ones (same unit) until it is profiled.
register_board_kind(
    KindSpec(
        "pi5",
        "pi",
        "int8",
        "onnxruntime",
        "provision-debian.sh",
        ("Raspberry Pi 5", "Raspberry Pi Compute Module 5"),
        12.0,
        3.0,
        1.1,
        "Pi 5: ~3 W idle, ~7.5 W at 4 busy cores (public bench figures)",
        "aarch64",
    )
)
register_board_kind(
    KindSpec(
        "pi4",
        "pi",
        "int8",
        "onnxruntime",
        "provision-debian.sh",
        ("Raspberry Pi 4", "Raspberry Pi Compute Module 4"),
        4.0,
        2.7,
        0.93,
        "Pi 4B: 2.7 W idle, 6.4 W at 4 busy cores (Pi Dramble bench)",
        "aarch64",
    )
)
register_board_kind(
    KindSpec(
        "jetson-orin",
        "jetson",
        "int8",
        "tensorrt",
        "provision-jetson.sh",
        ("Orin",),
        10.0,
        4.7,
        0.5,
        "Orin Nano: VDD_IN ~4.7 W idle (tegrastats captures)",
        "aarch64",
        "3.10",
    )
)
register_board_kind(
    KindSpec(
        "jetson-xavier",
        "jetson",
        "int8",
        "tensorrt",
        "provision-jetson.sh",
        ("Xavier",),
        8.0,
        3.9,
        0.7,
        "Xavier NX: VDD_IN ~3.9 W idle (tegrastats captures)",
        "aarch64",
        "3.10",
    )
)
register_board_kind(
    KindSpec(
        "jetson-nano",
        "jetson",
        "fp16",
        "tensorrt",
        "provision-jetson.sh",
        ("Jetson Nano",),
        3.0,
        2.0,
        0.6,
        "Jetson Nano: POM_5V_IN ~2.1 W idle (tegrastats captures)",
        "aarch64",
        "3.10",
    )
)
# Any arm64 Debian/Ubuntu box that is not a Pi or a Jetson (and the lab's emulated boards, `vitfleet lab`).
register_board_kind(
    KindSpec(
        "debian-arm64",
        "pi",
        "int8",
        "onnxruntime",
        "provision-debian.sh",
        (),
        8.0,
        3.0,
        1.0,
        "placeholder: 3 W + 1 W per busy arm64 core",
        "aarch64",
    )
)
register_board_kind(
    KindSpec(
        "x86",
        "cpu",
        "int8",
        "onnxruntime",
        "provision-debian.sh",
        (),
        40.0,
        10.0,
        5.0,
        "placeholder: 10 W + 5 W per busy x86 core",
        "x86_64",
    )
)
# `cpu` is a Linux box you manage yourself: deploy installs no apt packages there.
register_board_kind(
    KindSpec("cpu", "cpu", "int8", "onnxruntime", "", (), 10.0, 5.0, 3.0, "placeholder: 5 W + 3 W per busy core")
)
