"""`vitfleet deploy firstboot`: files for a freshly flashed SD card so `make deploy` can reach the board.

Two flavours, both setting the hostname and a key-only deploy account (`ssh_user` of the board):
cloud-init `user-data` (Ubuntu images, Pi OS Trixie+) and Pi OS Bookworm's `firstrun.sh` with the
`cmdline.txt` addition that runs it once. Not verified on hardware here (no SD card, no Pi); the
Bookworm script follows what Raspberry Pi Imager writes. docs/deploy.md walks through it.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.templates_render import render
from vitfleet.fleet_config import BoardConfig, FleetConfig

CMDLINE_ADDITION = (
    "systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
)
_PUBKEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) "
    r"[A-Za-z0-9+/=]+( [^\n'\"\\$`]*)?$"
)


def read_public_key(path: Path) -> str:
    if path.suffix != ".pub" and path.with_suffix(path.suffix + ".pub").exists():
        raise DeployError(f"{path} looks like a private key; pass the public half: {path}.pub")
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise DeployError(
            f"cannot read SSH public key {path} ({exc.strerror}); create one with "
            "ssh-keygen -t ed25519 -f ~/.ssh/vitfleet"
        ) from exc
    if not _PUBKEY.match(key):
        raise DeployError(f"{path} is not a single OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    return key


def hostname_for(board: BoardConfig) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", board.name.lower()).strip("-")[:63]
    if not name:
        raise DeployError(f"board name {board.name!r} gives no valid hostname; use letters, digits and '-'")
    return name


def locked_password_hash() -> str:
    """SHA-512 crypt of a random password that is never stored: the account logs in by key only."""
    done = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=secrets.token_urlsafe(32),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeployError(f"openssl passwd failed: {done.stderr.strip()}")
    return done.stdout.strip()


def write_first_boot(fleet: FleetConfig, board: BoardConfig, pubkey_file: Path, out: Path) -> list[Path]:
    key = read_public_key(pubkey_file)
    values = dict(BOARD=board.name, FLEET=fleet.name, HOSTNAME=hostname_for(board), USER=board.ssh_user, PUBKEY=key)
    out.mkdir(parents=True, exist_ok=True)
    user_data = out / "user-data"
    user_data.write_text(render("user-data", **values))
    (out / "meta-data").write_text(f"instance-id: vitfleet-{hostname_for(board)}\n")
    firstrun = out / "firstrun.sh"
    firstrun.write_text(render("firstrun.sh", PASSWORD_HASH=locked_password_hash(), **values))
    firstrun.chmod(0o755)
    cmdline = out / "cmdline.txt.append"
    cmdline.write_text(CMDLINE_ADDITION + "\n")
    return [user_data, out / "meta-data", firstrun, cmdline]
