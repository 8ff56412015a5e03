"""After a deploy: wait until every board reports itself `online` on the fleet's broker.

Agents and the aggregator publish a retained `online` on vitfleet/<fleet>/boards/<board>/available
(last will `offline`), so a fresh subscription sees every board's current state at once. A board
that only runs the broker counts as online when the broker accepts our connection. The check connects
through the fleet's one MQTT client (agent/mqtt_client.py) and reads topic names from `Topics`.
"""

from __future__ import annotations

import time

from vitfleet.agent.mqtt_client import BrokerUnreachable, MqttLink
from vitfleet.firmware_scripts.certs import FleetSecrets, operator_user
from vitfleet.fleet_config import BrokerConfig, FleetConfig, TlsConfig
from vitfleet.topics import Availability, Topics


def operator_login(fleet: FleetConfig, fleet_secrets: FleetSecrets | None) -> BrokerConfig:
    """How the deploying machine logs in to the fleet's broker: the operator account deploy created (its password
    file and, with TLS, its client certificate), else the fleet file's own broker login."""
    broker = fleet.broker
    if fleet_secrets is None or not fleet_secrets.password_file(operator_user(fleet)).exists():
        return broker
    user = operator_user(fleet)
    tls = (
        None
        if broker.tls is None
        else TlsConfig(
            ca_file=fleet_secrets.ca_cert,
            cert_file=fleet_secrets.client_cert(user),
            key_file=fleet_secrets.client_key(user),
        )
    )
    return broker.model_copy(
        update={"tls": tls, "username": user, "password_env": None, "password_file": fleet_secrets.password_file(user)}
    )


def wait_online(
    fleet: FleetConfig, login: BrokerConfig, boards: list[str], broker_only: list[str], timeout: float
) -> dict[str, str]:
    """board -> 'online' / 'offline' / 'unknown' (never reported) / 'malformed' / 'broker unreachable'."""
    topics = Topics(fleet.name)
    states: dict[str, str] = {}

    def on_message(topic: str, payload: bytes) -> None:
        where = topics.board_of(topic)
        if where is not None and where[1] == "available":
            state = Availability.parse(payload)
            states[where[0]] = "malformed" if state is None else state.value

    deadline = time.monotonic() + timeout
    link = MqttLink(login, fleet.name, "deploy", "operator", on_message, [(topics.all_boards("available"), 1)])
    try:
        link.start(wait=timeout)  # paho retries on its own meanwhile: the broker board may still be starting
    except BrokerUnreachable:
        return {b: "broker unreachable" for b in boards + broker_only}
    try:
        while time.monotonic() < deadline and any(states.get(b) != Availability.ONLINE for b in boards):
            time.sleep(0.2)
    finally:
        link.stop()
    result = {b: Availability.ONLINE.value for b in broker_only}
    result.update({b: states.get(b, "unknown") for b in boards})
    return result
