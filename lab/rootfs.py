"""The arm64 Debian root file system every lab board boots from, built once and cached.

Raspberry Pi OS is Debian bookworm arm64, so a lab board starts from `debootstrap --arch=arm64 bookworm`; its
second stage runs under qemu-user (binfmt_misc), which is CPU-bound (a few minutes on two cores), hence the cache.
The template is never booted itself: each board boots its own copy (`board_root.py`). The packages are what a
Raspberry Pi OS Lite image already holds for vitfleet's provisioning (Python with venv and pip, rsync, sshd, sudo,
systemd), so provisioning a lab board installs nothing from apt, as on a flashed Pi.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from vitfleet.lab.emulation import ensure_arm64_emulation
from vitfleet.lab.errors import LabError

DEFAULT_MIRROR = "http://deb.debian.org/debian"
STAMP = ".vitfleet-rootfs.json"


@dataclass(frozen=True)
class RootfsRecipe:
    suite: str = "bookworm"
    arch: str = "arm64"
    packages: tuple[str, ...] = (
        "systemd",
        "systemd-sysv",
        "dbus",
        "openssh-server",
        "sudo",
        "iproute2",
        "procps",
        "ca-certificates",
        "python3",
        "python3-venv",
        "python3-pip",
        "rsync",
        "libglib2.0-0",
    )
    mirror: str = DEFAULT_MIRROR

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"debian-{self.suite}-{self.arch}-{self.key}"


def cache_dir() -> Path:
    """Where templates live: outside any checkout, so fresh clones (and CI on the same machine) reuse them."""
    base = Path(
        os.environ.get("VITFLEET_LAB_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vitfleet" / "lab"
    )
    return base


def mirror_from_apt_sources() -> str:
    """The Debian mirror this machine's apt already uses (the only one a closed network may reach)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and "security" not in fields[1]:
                return fields[1]
    return DEFAULT_MIRROR


def template_ready(path: Path, recipe: RootfsRecipe) -> bool:
    stamp = path / STAMP
    try:
        return json.loads(stamp.read_text()).get("key") == recipe.key
    except (OSError, json.JSONDecodeError):
        return False


def ensure_rootfs(recipe: RootfsRecipe | None = None, echo: Callable[[str], None] = print) -> Path:
    """The cached template for `recipe`, built first when missing (debootstrap under qemu-user)."""
    recipe = recipe or RootfsRecipe(mirror=mirror_from_apt_sources())
    target = cache_dir() / recipe.name
    if template_ready(target, recipe):
        return target
    if shutil.which("debootstrap") is None:
        raise LabError(
            "debootstrap is not installed; run: apt-get install -y qemu-user-static binfmt-support "
            "debootstrap systemd-container (or make lab-boards, which installs them)"
        )
    ensure_arm64_emulation()
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    echo(f"building the {recipe.suite} {recipe.arch} root file system in {target} (once; a few minutes under qemu)")
    argv = [
        "debootstrap",
        f"--arch={recipe.arch}",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(partial),
        recipe.mirror,
    ]
    log = target.with_name(target.name + ".log")
    with open(log, "w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=3600)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise LabError(
            f"debootstrap failed ({tail[0]}); see {log}. Check that {recipe.mirror} is reachable "
            "(apt-get update works) and that binfmt_misc runs arm64 binaries"
        )
    (partial / STAMP).write_text(json.dumps({"key": recipe.key, **asdict(recipe)}, indent=1) + "\n")
    partial.rename(target)
    return target
