"""Packet writers: Python values to wire bytes, for both client and server packets.

Writers check only what the wire format needs (field widths, QoS bits); they do not
enforce the semantic rules the decoder enforces, so tests can build bad packets on purpose
(a PUBLISH to ``a/#``, a PUBLISH with QoS 2, a SUBACK from a client).
"""

from __future__ import annotations

import struct

from ._primitives import encode_binary, encode_uint16, encode_utf8, encode_varint
from .packets import (
    ConnAck,
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
    UnsubAck,
    Unsubscribe,
)

__all__ = ["encode_packet", "encode_puback", "encode_publish"]

_U16 = struct.Struct(">H").pack
_SHORT_HEADER = struct.Struct(">BB").pack
_ID_PACKET = struct.Struct(">BBH").pack

PINGREQ_BYTES = b"\xc0\x00"
PINGRESP_BYTES = b"\xd0\x00"
DISCONNECT_BYTES = b"\xe0\x00"


def _frame(first_byte: int, body: bytes) -> bytes:
    """Prefix a body with its fixed header (section 2.2)."""
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def encode_puback(packet_id: int) -> bytes:
    """PUBACK for ``packet_id``: one struct call, the gateway sends one per QoS 1 message."""
    return _ID_PACKET(0x40, 2, packet_id)


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int = 0,
    packet_id: int | None = None,
    *,
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    """PUBLISH (3.3) without building a :class:`Publish` first: the fan-out hot path."""
    raw_topic = topic.encode("utf-8")
    topic_length = len(raw_topic)
    if topic_length > 0xFFFF:
        raise ValueError("topic longer than 65535 bytes")
    if not 0 <= qos <= 2:
        raise ValueError(f"QoS {qos} is not 0, 1 or 2")
    length = 2 + topic_length + len(payload)
    first_byte = 0x30 | (dup << 3) | (qos << 1) | retain
    if qos:
        if packet_id is None:
            raise ValueError("a QoS 1/2 PUBLISH needs a packet identifier")
        length += 2
        header = _header(first_byte, length)
        return b"".join((header, _U16(topic_length), raw_topic, _U16(packet_id), payload))
    header = _header(first_byte, length)
    return b"".join((header, _U16(topic_length), raw_topic, payload))


def _header(first_byte: int, length: int) -> bytes:
    if length < 0x80:
        return _SHORT_HEADER(first_byte, length)
    return bytes((first_byte,)) + encode_varint(length)


def _encode_connect(packet: Connect) -> bytes:
    connect_flags = packet.clean_session << 1
    payload = [encode_utf8(packet.client_id)]
    if (will := packet.will) is not None:
        connect_flags |= 0x04 | (will.qos << 3) | (will.retain << 5)
        payload += (encode_utf8(will.topic), encode_binary(will.payload))
    if packet.username is not None:
        connect_flags |= 0x80
        payload.append(encode_utf8(packet.username))
    if packet.password is not None:
        connect_flags |= 0x40
        payload.append(encode_binary(packet.password))
    variable_header = (
        encode_utf8(packet.protocol_name)
        + bytes((packet.protocol_level, connect_flags))
        + encode_uint16(packet.keep_alive)
    )
    return _frame(0x10, variable_header + b"".join(payload))


def _encode_subscribe(packet: Subscribe) -> bytes:
    pairs = b"".join(encode_utf8(name) + bytes((qos,)) for name, qos in packet.filters)
    return _frame(0x82, encode_uint16(packet.packet_id) + pairs)


def _encode_unsubscribe(packet: Unsubscribe) -> bytes:
    names = b"".join(encode_utf8(name) for name in packet.filters)
    return _frame(0xA2, encode_uint16(packet.packet_id) + names)


def _encode_id_only(first_byte: int, packet_id: int) -> bytes:
    return bytes((first_byte, 2)) + encode_uint16(packet_id)


def encode_packet(packet: Packet) -> bytes:
    """Encode any packet, client or server side."""
    match packet:
        case Publish(topic, payload, qos, retain, dup, packet_id):
            return encode_publish(topic, payload, qos, packet_id, retain=retain, dup=dup)
        case PubAck(packet_id):
            return _encode_id_only(0x40, packet_id)
        case Connect():
            return _encode_connect(packet)
        case ConnAck(session_present, return_code):
            return bytes((0x20, 2, session_present, return_code))
        case Subscribe():
            return _encode_subscribe(packet)
        case SubAck(packet_id, return_codes):
            return _frame(0x90, encode_uint16(packet_id) + bytes(return_codes))
        case Unsubscribe():
            return _encode_unsubscribe(packet)
        case UnsubAck(packet_id):
            return _encode_id_only(0xB0, packet_id)
        case PubRec(packet_id):
            return _encode_id_only(0x50, packet_id)
        case PubRel(packet_id):
            return _encode_id_only(0x62, packet_id)
        case PubComp(packet_id):
            return _encode_id_only(0x70, packet_id)
        case PingReq():
            return PINGREQ_BYTES
        case PingResp():
            return PINGRESP_BYTES
        case Disconnect():
            return DISCONNECT_BYTES
    raise TypeError(f"not an MQTT packet: {packet!r}")
