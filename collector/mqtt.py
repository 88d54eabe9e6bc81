"""The MQTT client: paho-mqtt 2.x built from the settings, and what one delivery is.

`new_client` builds the paho client a connection uses (mqtt_connection.py): MQTT 5 or 3.1.1,
the client id that names our persistent session (3.1.1: ``clean_session`` false; MQTT 5
sets ``clean_start`` false and a session expiry when it connects), username and password,
TLS with a CA file and an optional client certificate and key, and paho's ``manual_ack``, so
that a message is acknowledged only when the ingestion says it is stored. It is the factory
tests wrap to inject faults (an ack that never leaves, a connection cut under the client);
the collector never builds a client anywhere else.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gronkoll.collector.mqtt_client import CollectorClient
from gronkoll.errors import ConfigError, GronkollError
from gronkoll.settings import Settings

log = logging.getLogger(__name__)

#: First wait before connecting again; it doubles per failure up to reconnect_max_s.
FIRST_BACKOFF_S = 1.0


class MqttRefused(GronkollError):
    """The broker refused us in a way a retry will not change (credentials, client id, TLS)."""


class Delivery(NamedTuple):
    """One message as the broker delivered it on one connection (a tuple: made per message)."""

    topic: str
    payload: bytes
    received_ms: int
    mid: int  # the packet id, unique among this connection's unacknowledged messages
    qos: int
    dup: bool  # the broker sent it before (a resend after a reconnect)
    generation: int  # the connection it came on


ClientFactory = Callable[[Settings], CollectorClient]


def tls_files(settings: Settings) -> dict[str, str] | None:
    """The TLS files the mqtt settings name, resolved and checked; None without TLS."""
    mqtt = settings.mqtt
    if mqtt is None or mqtt.tls is None:
        return None
    files = {}
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(mqtt.tls, key)
        if value is not None:
            path = settings.resolve(value)
            if not path.is_file():
                raise ConfigError(f"{settings.source}: mqtt.tls.{key}: no such file {path}")
            files[key] = str(path)
    if ("cert_file" in files) != ("key_file" in files):
        raise ConfigError(
            f"{settings.source}: mqtt.tls: cert_file and key_file go together "
            "(a client certificate and its key)"
        )
    return files


def new_client(settings: Settings) -> CollectorClient:
    """A paho client built from the mqtt settings (not connected); the factory tests wrap."""
    mqtt = settings.mqtt
    if mqtt is None:
        raise ConfigError(f"{settings.source}: mqtt: no mqtt section")
    v5 = mqtt.protocol == "5"
    client = CollectorClient(
        CallbackAPIVersion.VERSION2,
        client_id=mqtt.client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else False,  # 3.1.1: a persistent session
        reconnect_on_failure=False,  # our network thread reconnects, so it sees every error
        manual_ack=True,
    )
    if mqtt.username is not None:
        password = mqtt.password.get_secret_value() if mqtt.password is not None else None
        client.username_pw_set(mqtt.username, password)
    files = tls_files(settings)
    if files is not None:
        try:
            client.tls_set(
                ca_certs=files.get("ca_file"),  # None: the system's CAs
                certfile=files.get("cert_file"),
                keyfile=files.get("key_file"),
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, ValueError) as err:
            raise ConfigError(f"{settings.source}: mqtt.tls: cannot use the files: {err}") from None
    return client


class Outage:
    """Logs a condition once when it starts, when its cause changes, and once when it ends."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.attempts = 0
        self.error: str | None = None

    def failed(self, error: str, retry: str) -> None:
        """Record one failure; log it if it starts an outage or changes its cause."""
        self.attempts += 1
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s: %s; %s", self.what, error, retry)
        elif error != self.error:
            log.debug("%s: %s (still failing, now for this reason)", self.what, error)
        self.error = error

    def ended(self, how: str) -> None:
        """Log the end of an outage, if there was one."""
        if self.since is not None:
            lasted = time.monotonic() - self.since
            log.warning(
                "%s: %s after %.0f s (%d failed attempt%s)",
                self.what,
                how,
                lasted,
                self.attempts,
                "" if self.attempts == 1 else "s",
            )
        self.since, self.attempts, self.error = None, 0, None
