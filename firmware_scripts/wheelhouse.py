"""Wheels for a board that reaches no package index (fleet.yaml `offline: true`).

Deploy downloads the board group's binary wheels on the workstation, for the board kind's arch and Python (pip's
--platform/--python-version cross-download: no build runs here), caches them by that key and the requirement
list, and ships them in the board's tree (`app/wheels/`); board-install.sh then installs with `pip --no-index`.
A second deploy with the same requirements ships the same files, so its digest, and the board, are unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from vitfleet.board_kinds import board_kind
from vitfleet.firmware_scripts.errors import DeployError

# The manylinux tags an arm64 or x86 Debian bookworm / Ubuntu 22.04 (glibc 2.35–2.36) accepts, newest first.
_GLIBC_TAGS = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")


def platform_tags(arch: str) -> list[str]:
    return [f"{tag}_{arch}" for tag in _GLIBC_TAGS]


def wheelhouse(
    kind: str, requirements: list[str], cache_root: Path, echo: Callable[[str], None], dry_run: bool = False
) -> Path:
    """A folder of wheels that installs `requirements` on a board of `kind` with no index (cached)."""
    spec = board_kind(kind)
    if spec.arch is None:
        raise DeployError(
            f"board kind {kind!r} says nothing about its CPU or Python, so deploy cannot choose wheels "
            "for an offline board of it; set a kind such as debian-arm64 or x86, or drop `offline`"
        )
    key = hashlib.sha256("\n".join([spec.arch, spec.python, *requirements]).encode()).hexdigest()[:12]
    folder = cache_root / f"wheels-{spec.arch}-py{spec.python}-{key}"
    if (folder / ".complete").exists():
        return folder
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        spec.python,
        "--dest",
        str(folder) + ".partial",
    ]
    for tag in platform_tags(spec.arch):
        argv += ["--platform", tag]
    argv += requirements
    echo(" ".join(argv))
    if dry_run:
        return folder
    shutil.rmtree(str(folder) + ".partial", ignore_errors=True)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise DeployError(
            f"downloading {spec.arch} wheels for an offline {kind} board failed ({last}); check this "
            "machine reaches the package index, or give the board internet and drop `offline`"
        )
    Path(str(folder) + ".partial").rename(folder)
    (folder / ".complete").write_text("\n".join(requirements) + "\n")
    return folder
