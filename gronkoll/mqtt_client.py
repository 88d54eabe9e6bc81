"""A paho-mqtt client for the command path: the PC agent and the command publisher.

Both need the same things from a broker: MQTT 5 or 3.1.1, a user and password, TLS with a CA
file and an optional client certificate, a first connection that either succeeds within a
deadline or fails with a message naming host, port and what went wrong, and paho's own
network thread (``loop_start``) with its automatic reconnect afterwards. The collector keeps
its own client (collector/mqtt_connection.py) because it acknowledges by hand.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from gronkoll.errors import GronkollError
from gronkoll.settings import MqttTls


class BrokerUnavailable(GronkollError):
    """The MQTT broker could not be reached, refused us, or did not acknowledge in time.

    ``refused``: the broker or its certificate said no, which retrying will not change.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class BrokerSection(Protocol):
    """A config section that names a broker (the server's ``mqtt:``, the agent's ``broker:``)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def protocol(self) -> Literal["5", "3.1.1"]: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> SecretStr | None: ...
    @property
    def tls(self) -> MqttTls | None: ...
    @property
    def keepalive_s(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class BrokerAccess:
    """Where a broker is and how to log in: resolved paths, the password in clear."""

    host: str
    port: int
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls: bool = False
    keepalive_s: int = 60

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"


def broker_access(section: BrokerSection, resolve: Callable[[str], Path]) -> BrokerAccess:
    """How to reach the broker a config section names; resolve turns its paths into files."""
    tls = section.tls
    return BrokerAccess(
        host=section.host,
        port=section.port,
        protocol=section.protocol,
        username=section.username,
        password=section.password.get_secret_value() if section.password is not None else None,
        tls=tls is not None,
        ca_file=resolve(tls.ca_file) if tls and tls.ca_file else None,
        cert_file=resolve(tls.cert_file) if tls and tls.cert_file else None,
        key_file=resolve(tls.key_file) if tls and tls.key_file else None,
        keepalive_s=section.keepalive_s,
    )


def build_client(access: BrokerAccess, client_id: str, *, persistent: bool) -> paho.Client:
    """A paho client (not connected); persistent: keep our session and subscriptions."""
    v5 = access.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
    )
    client.max_inflight_messages_set(0)  # no cap of our own: the broker's window applies
    client.max_queued_messages_set(0)
    if access.username is not None:
        client.username_pw_set(access.username, access.password)
    if access.tls:
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(access, name)
            if path is not None and not path.is_file():
                raise BrokerUnavailable(f"MQTT broker {access.address}: no such {name} {path}")
        try:
            client.tls_set(
                ca_certs=str(access.ca_file) if access.ca_file else None,
                certfile=str(access.cert_file) if access.cert_file else None,
                keyfile=str(access.key_file) if access.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, ValueError) as err:
            raise BrokerUnavailable(f"MQTT broker {access.address}: TLS files: {err}") from None
    return client


def connect(
    client: paho.Client,
    access: BrokerAccess,
    *,
    timeout_s: float,
    persistent: bool,
    session_expiry_s: int = 86_400,
    on_connect: Callable[[bool], object] | None = None,
) -> bool:
    """Connect and start paho's network thread; True when the broker kept our session.

    ``on_connect(session_present)`` runs on paho's thread after this and every later
    successful (re)connection. Raises BrokerUnavailable when the broker cannot be reached or
    refuses us within timeout_s.
    """
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def connected(
        c: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not answered.is_set():
            outcome["reason"], outcome["session"] = reason, flags.session_present
            answered.set()
        if on_connect is not None and not reason.is_failure:
            on_connect(flags.session_present)

    client.on_connect = connected
    try:
        if access.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = session_expiry_s if persistent else 0
            client.connect(
                access.host,
                access.port,
                access.keepalive_s,
                clean_start=not persistent,
                properties=props,
            )
        else:  # 3.1.1: clean_session was set when the client was built
            client.connect(access.host, access.port, access.keepalive_s)
    except ssl.SSLCertVerificationError as err:
        raise BrokerUnavailable(
            f"MQTT broker {access.address}: its certificate is not accepted: {err.verify_message}",
            refused=True,
        ) from None
    except (OSError, ssl.SSLError) as err:
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise BrokerUnavailable(f"MQTT broker {access.address}: cannot connect: {text}") from None
    client.loop_start()
    if not answered.wait(timeout_s):
        client.loop_stop()
        raise BrokerUnavailable(f"MQTT broker {access.address}: no answer in {timeout_s:g} s")
    reason: ReasonCode = outcome["reason"]
    if reason.is_failure:
        client.loop_stop()
        who = f"user {access.username!r}" if access.username else "an anonymous client"
        raise BrokerUnavailable(
            f"MQTT broker {access.address} refused {who}: {reason}", refused=True
        )
    return bool(outcome["session"])
