"""What :class:`~.session.ServerSession` reports to the application.

Each event is something the application must decide on or learn about; packets the
session answers by itself (PINGREQ) produce no event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .packets import Connect, Publish, Subscribe, Unsubscribe

__all__ = [
    "ConnectReceived",
    "DisconnectReceived",
    "Event",
    "PubAckReceived",
    "PublishReceived",
    "SubscribeReceived",
    "UnsubscribeReceived",
]


@dataclass(frozen=True, slots=True)
class ConnectReceived:
    """A valid CONNECT: call ``accept()`` or ``refuse()``."""

    connect: Connect


@dataclass(frozen=True, slots=True)
class PublishReceived:
    """A PUBLISH from the client; for QoS 1 call ``ack_publish()`` once it is safe."""

    publish: Publish


@dataclass(frozen=True, slots=True)
class SubscribeReceived:
    """A SUBSCRIBE; answer with ``ack_subscribe()``."""

    subscribe: Subscribe


@dataclass(frozen=True, slots=True)
class UnsubscribeReceived:
    """An UNSUBSCRIBE; answer with ``ack_unsubscribe()``."""

    unsubscribe: Unsubscribe


@dataclass(frozen=True, slots=True)
class PubAckReceived:
    """The client acknowledged our QoS 1 ``publish``: it is settled and leaves in-flight."""

    packet_id: int
    publish: Publish


@dataclass(frozen=True, slots=True)
class DisconnectReceived:
    """A clean DISCONNECT: discard the Will [MQTT-3.14.4-3] and close."""


Event: TypeAlias = (
    ConnectReceived
    | PublishReceived
    | SubscribeReceived
    | UnsubscribeReceived
    | PubAckReceived
    | DisconnectReceived
)
