"""Which kind of board this is (a registered kind's name, as fleet.yaml's `kind:`), from the device tree or the CPU
arch."""

from __future__ import annotations

import platform
from pathlib import Path

from vitfleet.board_kinds import board_kinds


def detect_board_kind(root: Path = Path("/"), machine: str | None = None) -> str:
    try:
        model = (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00").decode("utf-8", "replace")
    except OSError:
        model = ""
    # Substrings of /proc/device-tree/model, kind by kind in registration order: first match wins. Read at each
    # call, so a kind a plugin registered after this module was imported is recognised too.
    for spec in board_kinds():
        if any(needle in model for needle in spec.model_names):
            return spec.name
    arch = (machine if machine is not None else platform.machine()).lower()
    return "x86" if arch in {"x86_64", "amd64", "i386", "i686"} else "cpu"
