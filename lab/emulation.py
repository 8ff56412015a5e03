"""arm64 binaries on this x86 machine: qemu-user registered with binfmt_misc.

The registration must carry the `C` (credentials) flag: without it the kernel runs setuid binaries such as
`sudo` with the caller's credentials, and every `sudo` inside a lab board fails ("effective uid is not 0"),
where on a real Pi it works. Debian's qemu-user-static registers `PF` only, so the lab re-registers it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vitfleet.lab.errors import LabError

BINFMT = Path("/proc/sys/fs/binfmt_misc")
ENTRY = BINFMT / "qemu-aarch64"
# The ELF header of an aarch64 executable and the mask binfmt_misc compares it under (as Debian registers it).
MAGIC = r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
INTERPRETERS = (Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P"), Path("/usr/bin/qemu-aarch64-static"))
INSTALL_HINT = "apt-get install -y qemu-user-static binfmt-support debootstrap systemd-container"


def _flags() -> str:
    for line in ENTRY.read_text().splitlines():
        if line.startswith("flags:"):
            return line.split(":", 1)[1].strip()
    return ""


def ensure_arm64_emulation() -> None:
    """Mount binfmt_misc if needed and make sure arm64 ELF files run through qemu with credentials."""
    if not (BINFMT / "register").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LabError(
                f"cannot mount binfmt_misc ({done.stderr.strip()}); run as root on a kernel with binfmt_misc"
            )
    interpreter = next((p for p in INTERPRETERS if p.exists()), None)
    if interpreter is None:
        raise LabError(f"qemu-user-static is not installed, so arm64 boards cannot run here; run: {INSTALL_HINT}")
    if ENTRY.exists() and "F" in _flags() and "C" in _flags():
        return
    if ENTRY.exists():
        ENTRY.write_text("-1")  # unregister, to register again with the credentials flag
    try:
        (BINFMT / "register").write_text(f":qemu-aarch64:M:0:{MAGIC}:{MASK}:{interpreter}:PFC")
    except OSError as exc:
        raise LabError(f"cannot register qemu-aarch64 with binfmt_misc ({exc}); run as root") from None
