"""One way to open an MQTT connection for every fleet process (paho-mqtt 2.x).

What every client needs and paho does not do by default: the VERSION2 callback API
(without it paho silently falls back to v1), a unique client id (a duplicate id makes
the broker kick the older client), subscriptions renewed in on_connect (so they
survive a broker restart), automatic reconnect with a short backoff, and TCP_NODELAY
on the socket (paho never sets it; without it small messages stall ~40 ms behind
Nagle + delayed ACK).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitfleet.errors import UserError
from vitfleet.fleet_config import BrokerConfig

log = logging.getLogger("vitfleet.mqtt")

MessageHandler = Callable[[str, bytes], None]


class BrokerUnreachable(UserError):
    """The broker did not accept a connection in time."""


def client_id(fleet: str, role: str, name: str) -> str:
    return f"vitfleet-{fleet}-{role}-{name}-{os.getpid()}-{secrets.token_hex(3)}"


def _set_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # websocket / TLS wrappers without setsockopt: nothing to tune
        pass


@dataclass
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass
class MqttLink:
    """A connected paho client plus the bookkeeping the fleet processes share."""

    broker: BrokerConfig
    fleet: str
    role: str
    name: str
    on_message: MessageHandler
    subscriptions: list[tuple[str, int]] = field(default_factory=list)
    will: Will | None = None
    online: Will | None = None  # published (retained) on every successful connect
    on_connected: Callable[[], None] | None = None
    callback_errors: int = 0
    connects: int = 0

    def __post_init__(self) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged this connection's subscriptions
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id(self.fleet, self.role, self.name), clean_session=True
        )
        self.client.on_socket_open = _set_nodelay
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        # A broker restart should cost well under a second, a long outage should not spin.
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=2)  # type: ignore[arg-type]
        self.client.max_queued_messages_set(10000)
        if self.broker.tls is not None:
            tls = self.broker.tls
            self.client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password())
        if self.will is not None:
            self.client.will_set(self.will.topic, self.will.payload, qos=self.will.qos, retain=self.will.retain)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("%s %s: broker refused the connection: %s", self.role, self.name, reason)
            return
        if self.subscriptions:
            client.subscribe(self.subscriptions)
        else:
            self.subscribed.set()
        if self.online is not None:
            client.publish(self.online.topic, self.online.payload, qos=self.online.qos, retain=self.online.retain)
        self.connects += 1
        self.connected.set()
        if self.on_connected is not None:
            try:
                self.on_connected()
            except Exception:  # noqa: BLE001 - a hook must not break the network thread
                log.exception("on_connected hook failed")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error(
                "%s %s: the broker refused a subscription (%s); check the ACL for this board",
                self.role,
                self.name,
                failed[0],
            )
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason.is_failure:
            log.warning("%s %s: lost the broker (%s); reconnecting", self.role, self.name, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.on_message(message.topic, message.payload)
        except Exception:  # noqa: BLE001 - handlers count their own errors; this is the last line of defence
            self.callback_errors += 1
            if self.callback_errors <= 3 or self.callback_errors % 1000 == 0:
                log.exception(
                    "%s %s: message handler failed on %s (%d so far)",
                    self.role,
                    self.name,
                    message.topic,
                    self.callback_errors,
                )

    def start(self, wait: float | None = 10.0) -> MqttLink:
        """Connect in the background; paho keeps reconnecting on its own from then on."""
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive)
        self.client.loop_start()
        if wait is not None:
            deadline = time.monotonic() + wait
            if not self.connected.wait(wait):
                self.stop()
                raise BrokerUnreachable(
                    f"no MQTT broker answered at {self.broker.host}:{self.broker.port} within "
                    f"{wait:.0f} s; start mosquitto or fix broker.host/port in the fleet file"
                )
            # Messages published before the SUBACK would pass us by (e.g. the first predictions).
            self.subscribed.wait(max(0.0, deadline - time.monotonic()))
        return self

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def publish_and_wait(self, topic: str, payload: bytes | str, timeout: float = 1.0) -> None:
        """QoS 1 publish that waits (bounded) for delivery: for last messages sent just before disconnecting."""
        if not self.connected.is_set():
            return
        info = self.client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=timeout)
        except (RuntimeError, ValueError):
            pass

    def stop(self, final: Will | None = None) -> None:
        """Disconnect cleanly, optionally publishing `final` (e.g. retained offline) first."""
        if final is not None and self.connected.is_set():
            info = self.client.publish(final.topic, final.payload, qos=final.qos, retain=final.retain)
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
