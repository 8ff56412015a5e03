"""The generated mosquitto config, passwords, CA and ACL, checked against a real mosquitto.

Two fleets (alpha, beta) share one broker, as they would on a shared broker board: the files
for each come from `make certs` + the deploy's broker renderer, concatenated.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from vitfleet.firmware_scripts.broker_config import render_acl, render_mosquitto_conf, write_broker_files
from vitfleet.firmware_scripts.certs import make_certs, operator_user, secrets_for
from vitfleet.fleet_config import parse_fleet
from vitfleet.topics import OFFLINE, ONLINE

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fleet_dict(name: str, port: int, tls: dict | None) -> dict:
    return {
        "name": name,
        "broker": {"host": "127.0.0.1", "port": port, **({"tls": tls} if tls else {})},
        # The strict per-part feature ACL is that of a fleet that does not heal itself (a healing fleet lets
        # agents write every part's features: test_a_healing_fleets_acl_lets_agents_take_any_part_and_only_...).
        "aggregator": {"heal_after_s": None},
        "boards": [
            {"name": f"{name}-a", "part": 0},
            {"name": f"{name}-b", "part": 1},
            {"name": f"{name}-hub", "roles": ["aggregator", "camera", "broker"]},
        ],
    }


class Broker:
    def __init__(self, conf: Path, port: int):
        self.port = port
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stdout.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port")

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out.decode()


def start_shared_broker(tmp: Path, tls: bool, require_client_cert: bool = False):
    port = free_port()
    tls_cfg = {"ca_file": "unused", "require_client_cert": require_client_cert} if tls else None
    fleets = [parse_fleet(fleet_dict(n, port, tls_cfg)) for n in ("alpha", "beta")]
    certs = tmp / ".certs"
    files = tmp / "broker"
    placement = {"alpha-a": 0, "alpha-b": 1}
    for fleet in fleets:
        make_certs(fleet, certs)
    # alpha's broker files are the base; beta's users and ACL are appended (one shared broker).
    write_broker_files(fleets[0], placement, secrets_for(fleets[0], certs), files, str(files), run_user="root")
    with open(files / "mosquitto.passwd", "a") as passwd:
        passwd.write(secrets_for(fleets[1], certs).passwd_file.read_text())
    with open(files / "acl", "a") as acl:
        acl.write("\n" + render_acl(fleets[1], {"beta-a": 0, "beta-b": 1}))
    return Broker(files / "mosquitto.conf", port), fleets, certs


class Client:
    """A paho client that records what it receives and how its connection ended."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
        system_ca: bool = False,
    ):
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.reason: object = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None or system_ca:
            certfile, keyfile = cert if cert else (None, None)
            self.client.tls_set(
                ca_certs=str(ca) if ca else None, certfile=certfile and str(certfile), keyfile=keyfile and str(keyfile)
            )
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload))
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason = reason_code
        self.connected.set()

    def wait_connected(self) -> bool:
        assert self.connected.wait(5), "no CONNACK within 5 s"
        return not self.reason.is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    broker, fleets, certs = start_shared_broker(tmp_path_factory.mktemp("tls"), tls=True)
    yield broker, fleets, certs
    broker.stop()


def login(broker, fleets, certs, user: str, fleet_index: int = 0) -> Client:
    s = secrets_for(fleets[fleet_index], certs)
    # The shared broker serves alpha's certificate, so every client trusts alpha's CA.
    client = Client(broker.port, user, s.password(user), ca=secrets_for(fleets[0], certs).ca_cert)
    assert client.wait_connected(), f"{user} was refused: {client.reason}"
    return client


def test_generated_config_has_nodelay_no_anonymous_and_tls(tls_broker):
    _, fleets, _ = tls_broker
    conf = render_mosquitto_conf(fleets[0], "/opt/vitfleet/broker", "vitfleet")
    assert "set_tcp_nodelay true" in conf and "allow_anonymous false" in conf
    assert "cafile /opt/vitfleet/broker/ca.crt" in conf and "require_certificate false" in conf


def test_board_cannot_publish_another_parts_features(tls_broker):
    broker, fleets, certs = tls_broker
    hub = login(broker, fleets, certs, "alpha-hub")
    board_a = login(broker, fleets, certs, "alpha-a")
    try:
        hub.subscribe("vitfleet/alpha/features/+")
        board_a.publish("vitfleet/alpha/features/1", b"forged part 1")
        board_a.publish("vitfleet/alpha/features/0", b"own part 0")
        assert wait_for(lambda: len(hub.messages) >= 1)
        time.sleep(0.3)  # give a wrongly delivered forged message time to arrive too
        assert hub.messages == [("vitfleet/alpha/features/0", b"own part 0")]
    finally:
        hub.close()
        board_a.close()


def test_board_can_publish_only_its_own_status(tls_broker):
    broker, fleets, certs = tls_broker
    op = login(broker, fleets, certs, operator_user(fleets[0]))
    board_a = login(broker, fleets, certs, "alpha-a")
    try:
        op.subscribe("vitfleet/alpha/#")
        board_a.publish("vitfleet/alpha/boards/alpha-b/available", OFFLINE)
        board_a.publish("vitfleet/alpha/predictions/cam0", b"forged")
        board_a.publish("vitfleet/alpha/boards/alpha-a/available", ONLINE)
        assert wait_for(lambda: len(op.messages) >= 1)
        time.sleep(0.3)
        assert op.messages == [("vitfleet/alpha/boards/alpha-a/available", ONLINE)]
    finally:
        op.close()
        board_a.close()


def test_board_can_say_hello_only_as_itself(tls_broker):
    broker, fleets, certs = tls_broker
    op = login(broker, fleets, certs, operator_user(fleets[0]))
    board_a = login(broker, fleets, certs, "alpha-a")
    try:
        op.subscribe("vitfleet/alpha/boards/+/hello")
        board_a.publish("vitfleet/alpha/boards/alpha-b/hello", b'{"board": "alpha-b"}')
        board_a.publish("vitfleet/alpha/boards/alpha-a/hello", b'{"board": "alpha-a"}')
        assert wait_for(lambda: len(op.messages) >= 1)
        time.sleep(0.3)
        assert op.messages == [("vitfleet/alpha/boards/alpha-a/hello", b'{"board": "alpha-a"}')]
    finally:
        op.close()
        board_a.close()


def test_board_cannot_read_another_fleets_topics(tls_broker):
    broker, fleets, certs = tls_broker
    intruder = login(broker, fleets, certs, "alpha-a")
    beta_agent = login(broker, fleets, certs, "beta-a", fleet_index=1)
    beta_camera = login(broker, fleets, certs, "beta-hub", fleet_index=1)
    try:
        intruder.subscribe("vitfleet/beta/#")
        intruder.subscribe("vitfleet/beta/frames")
        beta_agent.subscribe("vitfleet/beta/frames")
        beta_camera.publish("vitfleet/beta/frames", b"beta frame")
        assert wait_for(lambda: beta_agent.messages == [("vitfleet/beta/frames", b"beta frame")])
        time.sleep(0.3)
        assert intruder.messages == []
    finally:
        for c in (intruder, beta_agent, beta_camera):
            c.close()


def test_unauthenticated_and_wrong_password_clients_are_refused(tls_broker):
    broker, fleets, certs = tls_broker
    ca = secrets_for(fleets[0], certs).ca_cert
    anonymous = Client(broker.port, None, None, ca=ca)
    wrong = Client(broker.port, "alpha-a", "not-the-password", ca=ca)
    try:
        assert not anonymous.wait_connected()
        assert not wrong.wait_connected()
        assert "Not authorized" in str(anonymous.reason) or "Bad user name" in str(anonymous.reason)
    finally:
        anonymous.close()
        wrong.close()


def test_client_without_the_fleet_ca_cannot_connect(tls_broker):
    broker, fleets, certs = tls_broker
    s = secrets_for(fleets[0], certs)
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker.port, "alpha-a", s.password("alpha-a"), system_ca=True)
    # Another fleet's CA does not vouch for this broker either.
    other_ca = secrets_for(fleets[1], certs).ca_cert
    assert other_ca.read_bytes() != s.ca_cert.read_bytes()
    # beta's broker cert is not what is served; alpha's CA signed the one that is, so beta's CA fails.
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker.port, "alpha-a", s.password("alpha-a"), ca=other_ca)


def test_plain_tcp_client_cannot_talk_to_the_tls_listener(tls_broker):
    broker, fleets, certs = tls_broker
    s = secrets_for(fleets[0], certs)
    plain = Client(broker.port, "alpha-a", s.password("alpha-a"))
    try:
        assert not plain.connected.wait(1.5), "a plaintext client got a CONNACK from the TLS listener"
    finally:
        plain.close()


def test_required_client_certificate(tmp_path):
    broker, fleets, certs = start_shared_broker(tmp_path, tls=True, require_client_cert=True)
    s = secrets_for(fleets[0], certs)
    try:
        with_cert = Client(
            broker.port,
            "alpha-a",
            s.password("alpha-a"),
            ca=s.ca_cert,
            cert=(s.client_cert("alpha-a"), s.client_key("alpha-a")),
        )
        assert with_cert.wait_connected()
        with_cert.close()
        without = Client(broker.port, "alpha-a", s.password("alpha-a"), ca=s.ca_cert)
        assert not without.connected.wait(1.5) or not without.wait_connected()
        without.close()
    finally:
        broker.stop()


def test_make_certs_is_idempotent_and_keeps_secrets_private(tmp_path):
    fleet = parse_fleet(fleet_dict("alpha", 8883, {"ca_file": "x"}))
    first = make_certs(fleet, tmp_path)
    s = secrets_for(fleet, tmp_path)
    before = {p: p.read_bytes() for p in s.root.rglob("*") if p.is_file()}
    second = make_certs(fleet, tmp_path)
    after = {p: p.read_bytes() for p in s.root.rglob("*") if p.is_file()}
    assert "ca" in first["created"] and second["created"] == []
    assert before == after
    for private in [s.ca_key, s.broker_key, s.passwd_file, s.password_file("alpha-a"), s.client_key("alpha-a")]:
        assert private.stat().st_mode & 0o077 == 0, f"{private} is readable by others"
    assert all(s.password("alpha-a") not in name for name in first["created"] + first["kept"])


def test_the_aggregators_acl_covers_its_web_view_and_home_assistant_discovery():
    fleet = parse_fleet(
        {
            "name": "ha",
            "homeassistant": True,
            "boards": [{"name": "pi-a", "roles": ["agent"]}, {"name": "hub", "roles": ["aggregator", "camera"]}],
        }
    )
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in render_acl(fleet, {"pi-a": 0}).split("\n\n")}
    hub = blocks["user hub"]
    assert "topic read vitfleet/ha/predictions/+" in hub and "topic read vitfleet/ha/frames" in hub
    assert "topic write homeassistant/+/vitfleet_ha/+/config" in hub
    assert not any("homeassistant" in line for line in blocks["user pi-a"])
    quiet = parse_fleet({"name": "ha", "boards": [{"name": "hub", "roles": ["aggregator"]}]})
    assert "homeassistant" not in render_acl(quiet, {})


def test_a_healing_fleets_acl_lets_agents_take_any_part_and_only_the_aggregator_write_the_plan():
    fleet = parse_fleet(
        {
            "name": "h",
            "boards": [
                {"name": "pi-a", "part": 0},
                {"name": "pi-spare"},
                {"name": "hub", "roles": ["aggregator", "camera"]},
            ],
        }
    )
    assert fleet.aggregator.heal_after_s is not None  # healing is the default
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in render_acl(fleet, {"pi-a": 0}).split("\n\n")}
    for agent in ("user pi-a", "user pi-spare"):
        assert "topic write vitfleet/h/features/+" in blocks[agent] and "topic read vitfleet/h/plan" in blocks[agent]
        assert not any("write vitfleet/h/plan" in line for line in blocks[agent])
    assert "topic readwrite vitfleet/h/plan" in blocks["user hub"]


def test_the_operator_may_send_frames_but_forge_nothing_else(tls_broker):
    """The operator drives acceptance checks (`vitfleet lab check`) as a camera; it still cannot forge a prediction,
    a plan, a board's status or another fleet's frames."""
    broker, fleets, certs = tls_broker
    op = login(broker, fleets, certs, operator_user(fleets[0]))
    board_a = login(broker, fleets, certs, "alpha-a")
    beta_agent = login(broker, fleets, certs, "beta-a", fleet_index=1)
    try:
        board_a.subscribe("vitfleet/alpha/frames")
        board_a.subscribe("vitfleet/alpha/predictions/cam0")
        board_a.subscribe("vitfleet/alpha/boards/alpha-b/available")
        beta_agent.subscribe("vitfleet/beta/frames")
        op.publish("vitfleet/beta/frames", b"foreign")
        op.publish("vitfleet/alpha/predictions/cam0", b"forged")
        op.publish("vitfleet/alpha/boards/alpha-b/available", OFFLINE)
        op.publish("vitfleet/alpha/frames", b"test frame")
        assert wait_for(lambda: len(board_a.messages) >= 1)
        time.sleep(0.3)
        assert board_a.messages == [("vitfleet/alpha/frames", b"test frame")]
        assert beta_agent.messages == []
    finally:
        op.close()
        board_a.close()
        beta_agent.close()
