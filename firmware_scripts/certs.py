"""`make certs`: a small CA, a broker certificate, per-user client certificates and MQTT passwords.

Everything lands in `.certs/<fleet>/` (git-ignored); keys and passwords are mode 600. Re-running
keeps what exists and only adds what is missing, so a deploy after `make certs` ships the same
bytes and stays a no-op. Uses the `openssl` and `mosquitto_passwd` command-line tools.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.fleet_config import FleetConfig


def operator_user(fleet: FleetConfig) -> str:
    """The deploying machine's MQTT user: reads this fleet's topics to check it came up.

    Named per fleet so two fleets can share one broker without sharing a reader.
    """
    return f"operator-{fleet.name}"


CA_DAYS = 3650
LEAF_DAYS = 825
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


@dataclass(frozen=True)
class FleetSecrets:
    """Paths of one fleet's generated material (nothing is read until used)."""

    root: Path

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def broker_key(self) -> Path:
        return self.root / "broker.key"

    @property
    def broker_cert(self) -> Path:
        return self.root / "broker.crt"

    @property
    def passwd_file(self) -> Path:
        return self.root / "mosquitto.passwd"

    def client_key(self, user: str) -> Path:
        return self.root / "clients" / f"{user}.key"

    def client_cert(self, user: str) -> Path:
        return self.root / "clients" / f"{user}.crt"

    def password_file(self, user: str) -> Path:
        return self.root / "passwords" / user

    def password(self, user: str) -> str:
        path = self.password_file(user)
        if not path.exists():
            raise DeployError(f"no MQTT password for {user!r} in {self.root}; run: make certs FLEET=<fleet.yaml>")
        return path.read_text().strip()


def secrets_for(fleet: FleetConfig, certs_dir: Path) -> FleetSecrets:
    return FleetSecrets(certs_dir / fleet.name)


def mqtt_users(fleet: FleetConfig) -> list[str]:
    names = [b.name for b in fleet.boards]
    if operator_user(fleet) in names:
        raise DeployError(
            f"a board is named {operator_user(fleet)!r}, which is reserved for the deploying "
            "machine's MQTT user; rename the board in fleet.yaml"
        )
    return [*names, operator_user(fleet)]


def broker_hostnames(fleet: FleetConfig) -> list[str]:
    """Names the broker certificate must be valid for: the configured host, the broker board, loopback."""
    hosts = [fleet.broker.host] + [b.host for b in fleet.boards_with("broker")] + ["localhost", "127.0.0.1"]
    return sorted(set(hosts))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "openssl" if name == "openssl" else "mosquitto"
        raise DeployError(
            f"`{name}` is not installed on this machine; install it (apt-get install {package}) or run make setup"
        )
    return found


def _openssl(*args: str) -> None:
    done = subprocess.run([_tool("openssl"), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(f"openssl {args[0]} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")


def _san(hosts: list[str]) -> str:
    entries = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            entries.append(f"IP:{host}")
        except ValueError:
            entries.append(f"DNS:{host}")
    return ",".join(entries)


def _make_ca(s: FleetSecrets, fleet_name: str) -> None:
    _openssl(
        "req",
        "-x509",
        *_EC,
        "-nodes",
        "-keyout",
        str(s.ca_key),
        "-out",
        str(s.ca_cert),
        "-days",
        str(CA_DAYS),
        "-subj",
        f"/CN=vitfleet {fleet_name} CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    os.chmod(s.ca_key, 0o600)


def _make_leaf(s: FleetSecrets, key: Path, cert: Path, common_name: str, extensions: str) -> None:
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        ext.write_text(extensions)
        _openssl("req", "-new", *_EC, "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}")
        os.chmod(key, 0o600)
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(s.ca_cert),
            "-CAkey",
            str(s.ca_key),
            "-set_serial",
            "0x" + secrets.token_hex(16),
            "-days",
            str(LEAF_DAYS),
            "-sha256",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        )


def _write_passwd_file(s: FleetSecrets, users: list[str]) -> bool:
    """Hash the passwords into mosquitto's format, only when the user set or a password changed.

    mosquitto_passwd salts randomly, so regenerating every time would change the shipped bytes
    (and make every deploy restart the broker). `-U` hashes a plain file in place, which keeps
    passwords off the command line (unlike `-b`, where they show up in `ps`).
    """
    digest = hashlib.sha256("\n".join(f"{u}:{s.password(u)}" for u in users).encode()).hexdigest()
    marker = s.root / "mosquitto.passwd.sha256"
    if s.passwd_file.exists() and marker.exists() and marker.read_text().strip() == digest:
        return False
    plain = s.root / "mosquitto.passwd.tmp"
    _write_private(plain, "".join(f"{u}:{s.password(u)}\n" for u in users))
    done = subprocess.run([_tool("mosquitto_passwd"), "-U", str(plain)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        plain.unlink(missing_ok=True)
        raise DeployError(f"mosquitto_passwd -U failed: {done.stderr.strip()}")
    os.chmod(plain, 0o600)
    plain.replace(s.passwd_file)
    marker.write_text(digest + "\n")
    return True


def make_certs(fleet: FleetConfig, certs_dir: Path) -> dict[str, list[str]]:
    """Create whatever is missing; returns {'created': [...], 'kept': [...]} (names, never secrets)."""
    s = secrets_for(fleet, certs_dir)
    s.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(s.root, 0o700)
    created: list[str] = []
    kept: list[str] = []
    if not (s.ca_key.exists() and s.ca_cert.exists()):
        _make_ca(s, fleet.name)
        created.append("ca")
    else:
        kept.append("ca")
    hosts = broker_hostnames(fleet)
    san_marker = s.root / "broker.san"
    if (
        not s.broker_cert.exists()
        or not san_marker.exists()
        or san_marker.read_text().strip() != _san(hosts)
        or "ca" in created
    ):
        _make_leaf(
            s,
            s.broker_key,
            s.broker_cert,
            "vitfleet-broker",
            f"subjectAltName={_san(hosts)}\nextendedKeyUsage=serverAuth\n",
        )
        san_marker.write_text(_san(hosts) + "\n")
        created.append("broker")
    else:
        kept.append("broker")
    for user in mqtt_users(fleet):
        if not s.password_file(user).exists():
            _write_private(s.password_file(user), secrets.token_urlsafe(24) + "\n")
            created.append(f"password:{user}")
        else:
            kept.append(f"password:{user}")
        if "ca" in created or not s.client_cert(user).exists():
            _make_leaf(s, s.client_key(user), s.client_cert(user), user, "extendedKeyUsage=clientAuth\n")
            created.append(f"cert:{user}")
        else:
            kept.append(f"cert:{user}")
    if _write_passwd_file(s, mqtt_users(fleet)):
        created.append("mosquitto.passwd")
    else:
        kept.append("mosquitto.passwd")
    return {"created": created, "kept": kept}
