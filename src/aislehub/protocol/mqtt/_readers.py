"""Body readers: one function per packet type, and the table :mod:`.codec` dispatches on.

A reader gets the fixed-header flags and a view of exactly the packet body (its Remaining
Length bytes). Running past the end raises :class:`NeedMoreData`, which the codec reports
as :class:`MalformedPacket`; bytes left over after the last field are malformed too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from aislehub.errors import MalformedPacket, NeedMoreData

from ._primitives import check_utf8, decode_binary, decode_uint16, decode_utf8
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
    Will,
    new_publish,
)
from .topics import check_topic_filter, check_topic_name

__all__ = ["READERS", "Reader"]


class Reader(NamedTuple):
    """How to read one packet type: its name, required flags (None: any) and body reader."""

    name: str
    flags: int | None
    read: Callable[[int, memoryview], Packet]


def _expect_end(body: memoryview, pos: int, name: str) -> None:
    if pos != len(body):
        raise MalformedPacket(f"{name}: {len(body) - pos} bytes left over after the last field")


def _read_packet_id(body: memoryview, pos: int, name: str) -> tuple[int, int]:
    packet_id, pos = decode_uint16(body, pos)
    if packet_id == 0:
        raise MalformedPacket(f"{name}: packet identifier 0 [MQTT-2.3.1-1]")
    return packet_id, pos


def _read_byte(body: memoryview, pos: int) -> tuple[int, int]:
    if pos >= len(body):
        raise NeedMoreData("byte cut short")
    return body[pos], pos + 1


# -- CONNECT (3.1) ---------------------------------------------------------------------


def read_connect(flags: int, body: memoryview) -> Connect:
    protocol_name, pos = decode_utf8(body, 0)
    protocol_level, pos = _read_byte(body, pos)
    if protocol_name != "MQTT" or protocol_level != 4:
        # The rest follows another specification [MQTT-3.1.2-1]; report only what the
        # session needs to refuse it (CONNACK 1 or a plain disconnect) [MQTT-3.1.2-2].
        return Connect("", None, None, True, 0, None, protocol_name, protocol_level)
    connect_flags, pos = _read_byte(body, pos)
    _check_connect_flags(connect_flags)
    keep_alive, pos = decode_uint16(body, pos)
    client_id, pos = decode_utf8(body, pos)
    will = None
    if connect_flags & 0x04:
        will, pos = _read_will(body, pos, connect_flags)
    username = password = None
    if connect_flags & 0x80:
        username, pos = decode_utf8(body, pos)
    if connect_flags & 0x40:
        password, pos = decode_binary(body, pos)
    _expect_end(body, pos, "CONNECT")
    clean_session = bool(connect_flags & 0x02)
    return Connect(client_id, username, password, clean_session, keep_alive, will)


def _check_connect_flags(connect_flags: int) -> None:
    if connect_flags & 0x01:
        raise MalformedPacket("CONNECT: reserved flag is set [MQTT-3.1.2-3]")
    will_qos = (connect_flags >> 3) & 0x03
    if not connect_flags & 0x04:
        if will_qos:
            raise MalformedPacket("CONNECT: will QoS without will flag [MQTT-3.1.2-13]")
        if connect_flags & 0x20:
            raise MalformedPacket("CONNECT: will retain without will flag [MQTT-3.1.2-15]")
    if will_qos == 3:
        raise MalformedPacket("CONNECT: will QoS 3 [MQTT-3.1.2-14]")
    if connect_flags & 0x40 and not connect_flags & 0x80:
        raise MalformedPacket("CONNECT: password flag without username flag [MQTT-3.1.2-22]")


def _read_will(body: memoryview, pos: int, connect_flags: int) -> tuple[Will, int]:
    topic, pos = decode_utf8(body, pos)
    check_topic_name(topic)
    payload, pos = decode_binary(body, pos)
    qos = (connect_flags >> 3) & 0x03
    return Will(topic, payload, qos, bool(connect_flags & 0x20)), pos


# -- PUBLISH (3.3): the hot path, kept flat ---------------------------------------------


def read_publish(flags: int, body: memoryview) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH: QoS 3 [MQTT-3.3.1-4]")
    end = len(body)
    if end < 2:
        raise NeedMoreData("topic length cut short")
    topic_end = 2 + ((body[0] << 8) | body[1])
    if qos:
        if topic_end + 2 > end:
            raise NeedMoreData("topic or packet identifier cut short")
        packet_id: int | None = (body[topic_end] << 8) | body[topic_end + 1]
        if not packet_id:
            raise MalformedPacket("PUBLISH: packet identifier 0 [MQTT-2.3.1-1]")
        payload_start = topic_end + 2
    elif flags & 0x08:
        raise MalformedPacket("PUBLISH: DUP set on a QoS 0 message [MQTT-3.3.1-2]")
    elif topic_end > end:
        raise NeedMoreData("topic cut short")
    else:
        packet_id, payload_start = None, topic_end
    try:
        topic = str(body[2:topic_end], "utf-8")
    except UnicodeDecodeError:
        topic = check_utf8(body[2:topic_end])  # raises with the precise reason
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        check_topic_name(check_utf8(body[2:topic_end]))
    payload = bytes(body[payload_start:])
    return new_publish(topic, payload, qos, bool(flags & 0x01), bool(flags & 0x08), packet_id)


# -- packets whose whole body is a packet identifier ------------------------------------


def _id_only_reader(
    cls: type[PubAck | PubRec | PubRel | PubComp | UnsubAck], name: str
) -> Callable[[int, memoryview], Packet]:
    def read(flags: int, body: memoryview) -> Packet:
        packet_id, pos = _read_packet_id(body, 0, name)
        _expect_end(body, pos, name)
        return cls(packet_id)

    return read


# -- SUBSCRIBE / SUBACK / UNSUBSCRIBE (3.8 - 3.10) --------------------------------------


def read_subscribe(flags: int, body: memoryview) -> Subscribe:
    packet_id, pos = _read_packet_id(body, 0, "SUBSCRIBE")
    filters: list[tuple[str, int]] = []
    while pos < len(body):
        topic_filter, pos = decode_utf8(body, pos)
        check_topic_filter(topic_filter)
        qos, pos = _read_byte(body, pos)
        if qos > 2:
            raise MalformedPacket(f"SUBSCRIBE: requested QoS byte {qos:#04x} [MQTT-3-8.3-4]")
        filters.append((topic_filter, qos))
    if not filters:
        raise MalformedPacket("SUBSCRIBE: no topic filters [MQTT-3.8.3-3]")
    return Subscribe(packet_id, tuple(filters))


def read_suback(flags: int, body: memoryview) -> SubAck:
    packet_id, pos = _read_packet_id(body, 0, "SUBACK")
    codes = tuple(body[pos:])
    if not codes:
        raise MalformedPacket("SUBACK: no return codes [MQTT-3.8.4-5]")
    for code in codes:
        if code not in (0x00, 0x01, 0x02, 0x80):
            raise MalformedPacket(f"SUBACK: reserved return code {code:#04x} [MQTT-3.9.3-2]")
    return SubAck(packet_id, codes)


def read_unsubscribe(flags: int, body: memoryview) -> Unsubscribe:
    packet_id, pos = _read_packet_id(body, 0, "UNSUBSCRIBE")
    filters: list[str] = []
    while pos < len(body):
        topic_filter, pos = decode_utf8(body, pos)
        check_topic_filter(topic_filter)
        filters.append(topic_filter)
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE: no topic filters [MQTT-3.10.3-2]")
    return Unsubscribe(packet_id, tuple(filters))


# -- CONNACK and the empty packets ------------------------------------------------------


def read_connack(flags: int, body: memoryview) -> ConnAck:
    ack_flags, pos = _read_byte(body, 0)
    return_code, pos = _read_byte(body, pos)
    _expect_end(body, pos, "CONNACK")
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK: reserved acknowledge flags set (section 3.2.2.1)")
    if return_code > 5:
        raise MalformedPacket(f"CONNACK: reserved return code {return_code} (section 3.2.2.3)")
    if return_code and ack_flags:
        raise MalformedPacket("CONNACK: session present with a refusal [MQTT-3.2.2-4]")
    return ConnAck(bool(ack_flags), return_code)


def _empty_reader(packet: Packet, name: str) -> Callable[[int, memoryview], Packet]:
    def read(flags: int, body: memoryview) -> Packet:
        _expect_end(body, 0, name)
        return packet

    return read


#: Indexed by packet type (the high nibble of byte 1); None marks the reserved types 0, 15.
#: ``flags`` is what the low nibble must be [MQTT-2.2.2-1/2]; PUBLISH's flags are its own.
READERS: tuple[Reader | None, ...] = (
    None,
    Reader("CONNECT", 0b0000, read_connect),
    Reader("CONNACK", 0b0000, read_connack),
    Reader("PUBLISH", None, read_publish),
    Reader("PUBACK", 0b0000, _id_only_reader(PubAck, "PUBACK")),
    Reader("PUBREC", 0b0000, _id_only_reader(PubRec, "PUBREC")),
    Reader("PUBREL", 0b0010, _id_only_reader(PubRel, "PUBREL")),
    Reader("PUBCOMP", 0b0000, _id_only_reader(PubComp, "PUBCOMP")),
    Reader("SUBSCRIBE", 0b0010, read_subscribe),
    Reader("SUBACK", 0b0000, read_suback),
    Reader("UNSUBSCRIBE", 0b0010, read_unsubscribe),
    Reader("UNSUBACK", 0b0000, _id_only_reader(UnsubAck, "UNSUBACK")),
    Reader("PINGREQ", 0b0000, _empty_reader(PingReq(), "PINGREQ")),
    Reader("PINGRESP", 0b0000, _empty_reader(PingResp(), "PINGRESP")),
    Reader("DISCONNECT", 0b0000, _empty_reader(Disconnect(), "DISCONNECT")),
    None,
)
