"""After a deploy: wait until every board reports itself `online` on the fleet's broker.

Agents and the aggregator publish a retained `online` on vitfleet/<fleet>/boards/<board>/available
(last will `offline`), so a fresh subscription sees every board's current state at once. A board
that only runs the broker counts as online when the broker accepts our connection.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vitfleet.fleet_config import FleetConfig

from vitfleet.firmware_scripts.certs import FleetSecrets, operator_user


@dataclass(frozen=True)
class OperatorLogin:
    """How the deploying machine logs in to the fleet's broker (secrets resolved, never printed)."""

    host: str
    port: int
    username: str | None
    password: str | None
    ca_file: Path | None
    cert: tuple[Path, Path] | None


def operator_login(fleet: FleetConfig, fleet_secrets: FleetSecrets | None) -> OperatorLogin:
    broker = fleet.broker
    if fleet_secrets is not None and fleet_secrets.password_file(operator_user(fleet)).exists():
        user = operator_user(fleet)
        cert = (fleet_secrets.client_cert(user), fleet_secrets.client_key(user)) if broker.tls else None
        return OperatorLogin(broker.host, broker.port, user, fleet_secrets.password(user),
                             fleet_secrets.ca_cert if broker.tls else None, cert)
    cert = (broker.tls.cert_file, broker.tls.key_file) if broker.tls and broker.tls.cert_file and \
        broker.tls.key_file else None
    return OperatorLogin(broker.host, broker.port, broker.username, broker.password(),
                         broker.tls.ca_file if broker.tls else None, cert)


def wait_online(fleet: FleetConfig, login: OperatorLogin, boards: list[str], broker_only: list[str],
                timeout: float) -> dict[str, str]:
    """board -> 'online' / 'offline' / 'unknown' (never reported) / 'broker unreachable'."""
    import paho.mqtt.client as mqtt

    states: dict[str, str] = {}
    connected = threading.Event()
    prefix = f"vitfleet/{fleet.name}/boards/"

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(f"{prefix}+/available", qos=1)
            connected.set()

    def on_message(client, userdata, msg) -> None:
        tail = msg.topic[len(prefix):].split("/") if msg.topic.startswith(prefix) else []
        if len(tail) == 2 and tail[1] == "available":
            states[tail[0]] = msg.payload.decode("utf-8", "replace").strip()[:32]

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vitfleet-deploy-{uuid.uuid4().hex[:8]}")
    if login.username:
        client.username_pw_set(login.username, login.password)
    if login.ca_file is not None:
        client.tls_set(ca_certs=str(login.ca_file), certfile=str(login.cert[0]) if login.cert else None,
                       keyfile=str(login.cert[1]) if login.cert else None, cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect, client.on_message = on_connect, on_message
    deadline = time.monotonic() + timeout
    client.loop_start()
    try:
        while time.monotonic() < deadline and not connected.is_set():
            try:
                client.connect(login.host, login.port, keepalive=10)
                connected.wait(min(3.0, max(0.1, deadline - time.monotonic())))
            except (OSError, ssl.SSLError):
                time.sleep(1.0)  # the broker board may still be starting
        if not connected.is_set():
            return {b: "broker unreachable" for b in boards + broker_only}
        while time.monotonic() < deadline and any(states.get(b) != "online" for b in boards):
            time.sleep(0.2)
    finally:
        client.disconnect()
        client.loop_stop()
    result = {b: "online" for b in broker_only}
    result.update({b: states.get(b, "unknown") for b in boards})
    return result
