"""Which kind of board this is (the BoardKind names of fleet.yaml), from the device tree or the CPU arch."""

from __future__ import annotations

import platform
from pathlib import Path

from vitfleet.board_kinds import BOARD_KINDS

# Substrings of /proc/device-tree/model from the board-kind table, in its order: first match wins.
_MODEL_KINDS = tuple((needle, kind) for kind, spec in BOARD_KINDS.items() for needle in spec.model_names)


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
