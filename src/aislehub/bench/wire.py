"""What a benchmark device puts on the wire: CONNECT credentials and pre-encoded PUBLISHes.

Two dialects share one topic layout (``devices/{id}/messages/events/{bag}``): the IoT Hub
dialect (username ``{host}/{id}/?api-version=…``, SAS-token password signed with the key
derived from the enrollment group, contract §2.1 and §4) and anonymous plain MQTT for the
Mosquitto reference run. A PUBLISH is pre-encoded once per connection; on the hot path only
its two packet-identifier bytes change (section 3.3.2.2).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from aislehub.protocol.mqtt import Connect, encode_packet, encode_publish
from aislehub.protocol.sas import derive_device_key, generate_sas_token

__all__ = [
    "PACKET_IDS",
    "Dialect",
    "PublishTemplate",
    "Target",
    "connect_packet",
    "message_topic",
    "telemetry_body",
]

API_VERSION = "2021-04-12"
TOKEN_TTL = 3600  # seconds; every benchmark run is far shorter
KEEP_ALIVE = 600  # seconds; a bench connection only publishes, so ping rarely matters

# Big-endian packet identifiers 0..65535, indexed by value: one list lookup per message.
PACKET_IDS: tuple[bytes, ...] = tuple(i.to_bytes(2, "big") for i in range(65536))


@dataclass(frozen=True, slots=True)
class Dialect:
    """How devices authenticate: IoT Hub SAS (``hub_host`` and ``group_key``) or anonymous."""

    hub_host: str | None = None
    group_key: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.hub_host is None


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: an address, and the CA file when the port speaks TLS."""

    host: str
    port: int
    dialect: Dialect
    ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


def connect_packet(dialect: Dialect, device_id: str, now: float | None = None) -> bytes:
    """CONNECT for ``device_id``: SAS credentials in the hub dialect, none otherwise."""
    if dialect.anonymous:
        return encode_packet(Connect(device_id, None, None, True, KEEP_ALIVE))
    assert dialect.hub_host is not None and dialect.group_key is not None
    expiry = int((time.time() if now is None else now) + TOKEN_TTL)
    key = derive_device_key(dialect.group_key, device_id)
    resource = f"{dialect.hub_host}/devices/{device_id}"
    token = generate_sas_token(resource, key, expiry)
    username = f"{dialect.hub_host}/{device_id}/?api-version={API_VERSION}"
    # clean_session=0 like the SDK; the hub ignores it for telemetry-only devices.
    return encode_packet(Connect(device_id, username, token.encode(), False, KEEP_ALIVE))


def message_topic(device_id: str, properties: dict[str, str] | None = None) -> str:
    """``devices/{id}/messages/events/{bag}`` with a percent-encoded property bag (§2.2)."""
    bag = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in (properties or {}).items()
    )
    return f"devices/{device_id}/messages/events/{bag}"


def telemetry_body(seq: int = 0, mid: str | None = None) -> bytes:
    """About 100 bytes of JSON a retail sensor might send (a cooler's readings)."""
    body: dict[str, object] = {
        "outlet": "store-0042",
        "temperature": 4.25,
        "humidity": 61.5,
        "doorOpen": False,
        "compressorAmps": 1.82,
        "seq": seq,
    }
    if mid is not None:
        body["mid"] = mid
    return orjson.dumps(body)


class PublishTemplate:
    """A QoS 1 PUBLISH split around its packet identifier: ``head | id | payload``."""

    __slots__ = ("head", "payload")

    def __init__(self, topic: str, payload: bytes) -> None:
        whole = encode_publish(topic, payload, qos=1, packet_id=0)
        split = len(whole) - len(payload) - 2
        self.head = whole[:split]
        self.payload = payload

    def parts(self, packet_id: int) -> tuple[bytes, bytes, bytes]:
        return self.head, PACKET_IDS[packet_id], self.payload
