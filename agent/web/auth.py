"""HTTP basic auth for a view bound beyond loopback, against the fleet's own MQTT credentials.

Accepted: the users of a mosquitto password file (`make certs` writes `.certs/<fleet>/mosquitto.passwd`;
hashes `$7$` PBKDF2-SHA512 and `$6$` SHA-512, as mosquitto_passwd writes them), and the broker user the fleet
config names (broker.username + password_env / password_file). No new secret to manage: whoever may read the
fleet's topics may read its page. Checks run in constant time per candidate; secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from vitfleet.errors import UserError
from vitfleet.fleet_config import BrokerConfig


class WebAuthError(UserError):
    """A password file that cannot be read or holds no usable user."""


def _check_hash(stored: str, password: str) -> bool:
    parts = stored.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
            return hmac.compare_digest(got, digest)
        if len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            return hmac.compare_digest(hashlib.sha512(password.encode() + salt).digest(), digest)
    except (binascii.Error, ValueError):
        return False
    return False


def read_passwd_file(path: Path) -> dict[str, str]:
    """user -> stored hash, from a mosquitto password file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise WebAuthError(
            f"the password file {path} cannot be read ({exc.strerror}); run `make certs "
            "FLEET=fleet.yaml` or pass another with --http-passwd"
        ) from None
    users: dict[str, str] = {}
    for line in text.splitlines():
        user, sep, stored = line.strip().partition(":")
        if sep and user and stored.startswith("$"):
            users[user] = stored
    return users


@dataclass
class Credentials:
    hashed: dict[str, str] = field(default_factory=dict)  # from a mosquitto password file
    plain: dict[str, str] = field(default_factory=dict)  # the fleet config's broker user

    def __bool__(self) -> bool:
        return bool(self.hashed or self.plain)

    def check(self, header: str | None) -> bool:
        """True when an `Authorization: Basic …` header names a known user with the right password."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        ok = False
        if user in self.plain:
            ok = hmac.compare_digest(self.plain[user].encode(), password.encode())
        if not ok and user in self.hashed:
            ok = _check_hash(self.hashed[user], password)
        return ok

    @property
    def users(self) -> list[str]:
        return sorted(set(self.hashed) | set(self.plain))


def fleet_credentials(
    broker: BrokerConfig, fleet_name: str, passwd_file: Path | None = None, certs_dir: Path = Path(".certs")
) -> Credentials:
    """The credentials a non-loopback view accepts: --http-passwd, else `.certs/<fleet>/mosquitto.passwd` when it
    exists, plus the fleet config's broker user."""
    creds = Credentials()
    path = passwd_file if passwd_file is not None else certs_dir / fleet_name / "mosquitto.passwd"
    if passwd_file is not None or path.exists():
        creds.hashed = read_passwd_file(path)
    if broker.username:
        password = broker.password()
        if password:
            creds.plain[broker.username] = password
    return creds
