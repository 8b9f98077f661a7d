"""MQTT 3.1.1 control packets as immutable values, both directions.

Each class mirrors one packet of spec chapter 3; the codec in :mod:`.codec` turns them
into bytes and back. Constructors do not validate (the PUBLISH hot path builds one per
message); the decoder only ever builds valid ones, and the encoder checks what the wire
format needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import TypeAlias

__all__ = [
    "ConnAck",
    "ConnAckCode",
    "Connect",
    "Disconnect",
    "Packet",
    "PingReq",
    "PingResp",
    "PubAck",
    "PubComp",
    "PubRec",
    "PubRel",
    "Publish",
    "SubAck",
    "Subscribe",
    "SubscribeReturnCode",
    "UnsubAck",
    "Unsubscribe",
    "Will",
]


class ConnAckCode(IntEnum):
    """CONNACK return codes (section 3.2.2.3, table 3.1)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


class SubscribeReturnCode(IntEnum):
    """SUBACK return codes (section 3.9.3): the granted QoS, or failure."""

    QOS_0 = 0
    QOS_1 = 1
    QOS_2 = 2
    FAILURE = 0x80


@dataclass(frozen=True, slots=True)
class Will:
    """The Will Message carried in CONNECT (section 3.1.2.5)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT (3.1). ``password`` is binary data in 3.1.1, not a string."""

    client_id: str
    username: str | None
    password: bytes | None
    clean_session: bool
    keep_alive: int
    will: Will | None = None
    protocol_name: str = "MQTT"
    protocol_level: int = 4


@dataclass(frozen=True, slots=True)
class ConnAck:
    """CONNACK (3.2)."""

    session_present: bool
    return_code: int


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH (3.3). ``packet_id`` is present exactly when ``qos > 0``."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class PubAck:
    """PUBACK (3.4): settles a QoS 1 PUBLISH."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PubRec:
    """PUBREC (3.5), QoS 2 step 1. Decoded, never accepted by our session."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PubRel:
    """PUBREL (3.6), QoS 2 step 2. Decoded, never accepted by our session."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PubComp:
    """PUBCOMP (3.7), QoS 2 step 3. Decoded, never accepted by our session."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE (3.8): ``(topic filter, requested QoS)`` pairs."""

    packet_id: int
    filters: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SubAck:
    """SUBACK (3.9): one return code per requested filter, in order."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE (3.10)."""

    packet_id: int
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnsubAck:
    """UNSUBACK (3.11)."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PingReq:
    """PINGREQ (3.12)."""


@dataclass(frozen=True, slots=True)
class PingResp:
    """PINGRESP (3.13)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT (3.14)."""


Packet: TypeAlias = (
    Connect
    | ConnAck
    | Publish
    | PubAck
    | PubRec
    | PubRel
    | PubComp
    | Subscribe
    | SubAck
    | Unsubscribe
    | UnsubAck
    | PingReq
    | PingResp
    | Disconnect
)


def _publish_factory() -> Callable[[str, bytes, int, bool, bool, int | None], Publish]:
    """A positional constructor for the decoder's hot path.

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` once per field;
    calling the slot descriptors directly builds the identical object in about half the
    time (the decoder makes one per received PUBLISH). Tests check it matches ``Publish``.
    """
    new = object.__new__
    set_topic, set_payload, set_qos, set_retain, set_dup, set_packet_id = (
        Publish.__dict__[field.name].__set__ for field in fields(Publish)
    )

    def make(
        topic: str, payload: bytes, qos: int, retain: bool, dup: bool, packet_id: int | None
    ) -> Publish:
        publish: Publish = new(Publish)
        set_topic(publish, topic)
        set_payload(publish, payload)
        set_qos(publish, qos)
        set_retain(publish, retain)
        set_dup(publish, dup)
        set_packet_id(publish, packet_id)
        return publish

    return make


new_publish = _publish_factory()
