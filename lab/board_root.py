"""One lab board's own root file system: a copy of the template, made into a board as a first boot would.

What `vitfleet deploy firstboot` does to a flashed Pi is done here to the copy: its hostname, the `vitfleet`
account with passwordless sudo and the operator's SSH key, fresh SSH host keys (so two boards never share one).
Three systemd units of the template cannot run in a container here (systemd's credentials need a mount the
container may not make) and are adjusted, so the board reports `running`, not `degraded`, as a real board would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vitfleet.lab.errors import LabError

USER = "vitfleet"
_CREDENTIAL_UNITS = ("systemd-sysusers", "systemd-tmpfiles-setup", "systemd-tmpfiles-setup-dev")


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise LabError(f"preparing a lab board failed at `{' '.join(argv[:4])}`: "
                       f"{(done.stderr or done.stdout).strip()[-300:]}")


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
    (etc / "machine-id").unlink(missing_ok=True)  # systemd makes a new one at boot: every board its own
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{hostname}", "-f",
          str(etc / "ssh" / "ssh_host_ed25519_key")])
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
    return (etc / "ssh" / "ssh_host_ed25519_key.pub").read_text().strip()
