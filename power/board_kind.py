"""Which kind of board this is (the BoardKind names of fleet.yaml), from the device tree or the CPU arch."""

from __future__ import annotations

import platform
from pathlib import Path

# Substrings of /proc/device-tree/model, first match wins (Orin Nano must not read as Nano).
_MODEL_KINDS = (
    ("Raspberry Pi 5", "pi5"),
    ("Raspberry Pi Compute Module 5", "pi5"),
    ("Raspberry Pi 4", "pi4"),
    ("Raspberry Pi Compute Module 4", "pi4"),
    ("Orin", "jetson-orin"),
    ("Xavier", "jetson-xavier"),
    ("Jetson Nano", "jetson-nano"),
)


def detect_board_kind(root: Path = Path("/"), machine: str | None = None) -> str:
    try:
        model = (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00").decode("utf-8", "replace")
    except OSError:
        model = ""
    for needle, kind in _MODEL_KINDS:
        if needle in model:
            return kind
    arch = (machine if machine is not None else platform.machine()).lower()
    return "x86" if arch in {"x86_64", "amd64", "i386", "i686"} else "cpu"
