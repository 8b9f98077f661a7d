"""Sans-IO MQTT 3.1.1: a codec (bytes <-> packets) and the server side of a session.

Layers, bottom up: ``_primitives`` (integers, strings, Remaining Length), ``packets``
(immutable values), ``topics`` (name/filter rules), ``_readers``/``_writers`` (one
function per packet type), ``codec`` (framing, limits, dispatch), ``events`` and
``session`` (the connection state machine the gateway drives). Nothing here touches a
socket, a clock or an event loop.
"""

from .codec import decode_packet, encode_packet, encode_puback, encode_publish
from .events import (
    ConnectReceived,
    DisconnectReceived,
    Event,
    PubAckReceived,
    PublishReceived,
    SubscribeReceived,
    UnsubscribeReceived,
)
from .packets import (
    ConnAck,
    ConnAckCode,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscribeReturnCode,
    UnsubAck,
    Unsubscribe,
    Will,
)
from .session import DEFAULT_MAX_REMAINING_LENGTH, ServerSession, SessionState

__all__ = [
    "DEFAULT_MAX_REMAINING_LENGTH",
    "ConnAck",
    "ConnAckCode",
    "Connect",
    "ConnectReceived",
    "Disconnect",
    "DisconnectReceived",
    "Event",
    "Packet",
    "PingReq",
    "PingResp",
    "PubAck",
    "PubAckReceived",
    "PubComp",
    "PubRec",
    "PubRel",
    "Publish",
    "PublishReceived",
    "ServerSession",
    "SessionState",
    "SubAck",
    "Subscribe",
    "SubscribeReceived",
    "SubscribeReturnCode",
    "UnsubAck",
    "Unsubscribe",
    "UnsubscribeReceived",
    "Will",
    "decode_packet",
    "encode_packet",
    "encode_puback",
    "encode_publish",
]
