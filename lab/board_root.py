"""One lab board's own root file system: a copy of the template, made into a board as a first boot would.

What `vitfleet deploy firstboot` does to a flashed Pi is done here to the copy: its hostname, the `vitfleet`
account with passwordless sudo and the operator's SSH key, fresh SSH host keys (so two boards never share one).
Three systemd units of the template cannot run in a container here (systemd's credentials need a mount the
container may not make) and are adjusted, so the board reports `running`, not `degraded`, as a real board would.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from vitfleet.lab.errors import LabError

USER = "vitfleet"
_CREDENTIAL_UNITS = ("systemd-sysusers", "systemd-tmpfiles-setup", "systemd-tmpfiles-setup-dev")


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise LabError(
            f"preparing a lab board failed at `{' '.join(argv[:4])}`: {(done.stderr or done.stdout).strip()[-300:]}"
        )


# A Raspberry Pi 5's cores (Cortex-A76), as its kernel describes them. qemu-user leaves the host's x86
# /proc/cpuinfo in place, and ONNX Runtime's CPU probe (cpuinfo) crashes on it at import; a Pi shows this.
_A76 = """processor\t: {index}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1
"""
_CPUINFO_MOUNT = """[Unit]
Description=A Raspberry Pi 5's /proc/cpuinfo (vitfleet lab: qemu-user shows the host's)
DefaultDependencies=no
Before=sysinit.target

[Mount]
What=/etc/vitfleet-lab/cpuinfo
Where=/proc/cpuinfo
Type=none
Options=bind,ro

[Install]
WantedBy=sysinit.target
"""


def emulate_pi5_cpu(root: Path) -> None:
    """Every process of the board runs on an emulated Cortex-A76 (QEMU_CPU; qemu's default `max` CPU has
    instructions no Pi has, such as SVE, which ONNX Runtime would pick kernels for) and reads an A76 cpuinfo."""
    import os

    etc = root / "etc"
    (etc / "vitfleet-lab").mkdir(exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    (etc / "vitfleet-lab" / "cpuinfo").write_text("\n".join(_A76.format(index=i) for i in range(cores)))
    units = etc / "systemd" / "system"
    (units / "proc-cpuinfo.mount").write_text(_CPUINFO_MOUNT)
    (units / "sysinit.target.wants").mkdir(exist_ok=True)
    (units / "sysinit.target.wants" / "proc-cpuinfo.mount").symlink_to("/etc/systemd/system/proc-cpuinfo.mount")
    (etc / "systemd" / "system.conf.d").mkdir(exist_ok=True)
    (etc / "systemd" / "system.conf.d" / "lab-cpu.conf").write_text(
        "[Manager]\nDefaultEnvironment=QEMU_CPU=cortex-a76\n"
    )
    environment = etc / "environment"
    current = environment.read_text() if environment.exists() else ""
    environment.write_text(current + "QEMU_CPU=cortex-a76\n")  # ssh sessions (pam_env)


def make_board_root(template: Path, root: Path, hostname: str, authorized_key: str) -> str:
    """Copy the template to `root` and make it board `hostname`; returns its SSH host public key line."""
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _run(["cp", "-a", "--reflink=auto", str(template), str(root)])
    etc = root / "etc"
    (etc / "hostname").write_text(hostname + "\n")
    hosts = (etc / "hosts").read_text() if (etc / "hosts").exists() else "127.0.0.1 localhost\n"
    (etc / "hosts").write_text(hosts + f"127.0.1.1 {hostname}\n")
    # Every board its own identity, as a flashed card gets at its first boot (left empty, nspawn hands every
    # container the same transient id).
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    _run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"root@{hostname}",
            "-f",
            str(etc / "ssh" / "ssh_host_ed25519_key"),
        ]
    )
    _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo,video", USER])
    sudoers = etc / "sudoers.d" / USER
    sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    ssh_dir = root / "home" / USER / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(authorized_key.strip() + "\n")
    _run(["chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh"])
    for unit in _CREDENTIAL_UNITS:
        dropin = etc / "systemd" / "system" / f"{unit}.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "lab-no-credentials.conf").write_text("[Service]\nLoadCredential=\nImportCredential=\n")
    # A flashed image is configured already: no interactive first-boot wizard on a console nobody watches.
    (etc / "systemd" / "system" / "systemd-firstboot.service").symlink_to("/dev/null")
    emulate_pi5_cpu(root)
    return (etc / "ssh" / "ssh_host_ed25519_key.pub").read_text().strip()
