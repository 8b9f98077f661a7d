"""MQTT 3.1.1 codec: round trips, prefixes, garbage, and each malformed case by its clause."""

from __future__ import annotations

import contextlib
import re
import struct
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aislehub.protocol.mqtt as mqtt
from aislehub.errors import MalformedPacket, NeedMoreData, PacketTooLarge, ProtocolError
from aislehub.protocol.mqtt import (
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
    decode_packet,
    encode_packet,
    encode_puback,
    encode_publish,
)
from aislehub.protocol.mqtt._primitives import (
    MAX_REMAINING_LENGTH,
    decode_varint,
    encode_utf8,
    encode_varint,
)
from aislehub.protocol.mqtt.packets import new_publish
from aislehub.protocol.mqtt.topics import check_topic_filter

LIMIT = MAX_REMAINING_LENGTH
T = TypeVar("T")

# -- strategies: every valid packet -----------------------------------------------------

_no_surrogates = st.characters(codec="utf-8", exclude_characters="\x00")
_level_chars = st.characters(codec="utf-8", exclude_characters="\x00+#/")

strings = st.text(alphabet=_no_surrogates, max_size=20)
topic_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00+#"),
    min_size=1,
    max_size=30,
)
packet_ids = st.integers(1, 0xFFFF)
payloads = st.binary(max_size=300)  # crosses the one/two-byte Remaining Length boundary


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(st.just("+"), st.text(_level_chars, max_size=6)), max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels) or "#"


wills = st.builds(Will, topic_names, st.binary(max_size=40), st.integers(0, 2), st.booleans())


@st.composite
def connects(draw: st.DrawFn) -> Connect:
    username = draw(st.none() | strings)
    password = None if username is None else draw(st.none() | st.binary(max_size=40))
    return Connect(
        client_id=draw(strings),
        username=username,
        password=password,
        clean_session=draw(st.booleans()),
        keep_alive=draw(st.integers(0, 0xFFFF)),
        will=draw(st.none() | wills),
    )


@st.composite
def publishes(draw: st.DrawFn) -> Publish:
    qos = draw(st.integers(0, 2))
    return Publish(
        topic=draw(topic_names),
        payload=draw(payloads),
        qos=qos,
        retain=draw(st.booleans()),
        dup=qos > 0 and draw(st.booleans()),  # DUP is 0 at QoS 0 [MQTT-3.3.1-2]
        packet_id=draw(packet_ids) if qos else None,
    )


def _tuples(elements: st.SearchStrategy[T]) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, min_size=1, max_size=4).map(tuple)


packets: st.SearchStrategy[Packet] = st.one_of(
    connects(),
    st.builds(ConnAck, st.booleans(), st.just(0)),
    st.builds(ConnAck, st.just(False), st.integers(1, 5)),
    publishes(),
    st.builds(PubAck, packet_ids),
    st.builds(PubRec, packet_ids),
    st.builds(PubRel, packet_ids),
    st.builds(PubComp, packet_ids),
    st.builds(Subscribe, packet_ids, _tuples(st.tuples(topic_filters(), st.integers(0, 2)))),
    st.builds(SubAck, packet_ids, _tuples(st.sampled_from((0, 1, 2, 0x80)))),
    st.builds(Unsubscribe, packet_ids, _tuples(topic_filters())),
    st.builds(UnsubAck, packet_ids),
    st.just(PingReq()),
    st.just(PingResp()),
    st.just(Disconnect()),
)


# -- properties --------------------------------------------------------------------------


@settings(max_examples=150)
@given(packets)
def test_round_trip(packet: Packet) -> None:
    raw = encode_packet(packet)
    assert decode_packet(raw, LIMIT) == (packet, len(raw))
    assert decode_packet(raw + b"\xc0\x00", LIMIT) == (packet, len(raw))  # stops at its end


@settings(max_examples=60)
@given(packets)
def test_every_proper_prefix_needs_more_data(packet: Packet) -> None:
    raw = encode_packet(packet)
    for end in range(len(raw)):
        with pytest.raises(NeedMoreData):
            decode_packet(raw[:end], LIMIT)


@settings(max_examples=200)
@given(st.binary(max_size=80), st.integers(0, 100))
def test_random_bytes_raise_only_protocol_errors(data: bytes, limit: int) -> None:
    with contextlib.suppress(ProtocolError):
        decode_packet(data, limit)


_edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=3)


@settings(max_examples=100)
@given(packets, _edits)
def test_mutated_packets_raise_only_protocol_errors(
    packet: Packet, edits: list[tuple[int, int]]
) -> None:
    raw = bytearray(encode_packet(packet))
    for index, byte in edits:
        raw[index % len(raw)] = byte
    with contextlib.suppress(ProtocolError):
        decode_packet(raw, LIMIT)


@settings(max_examples=30)
@given(st.binary(max_size=40))
def test_decoders_accept_every_buffer_type(data: bytes) -> None:
    for buf in (data, bytearray(data), memoryview(data)):
        with contextlib.suppress(ProtocolError):
            decode_packet(buf, LIMIT)


# -- malformed packets, one per rule -------------------------------------------------------


def frame(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def utf8_raw(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def connect_body(flags: int, payload: bytes = utf8_raw(b"dev")) -> bytes:
    return utf8_raw(b"MQTT") + bytes((4, flags)) + b"\x00\x3c" + payload


def publish(topic: bytes, qos: int = 0, packet_id: bytes = b"", flags: int = 0) -> bytes:
    return frame(0x30 | flags | qos << 1, utf8_raw(topic) + packet_id + b"payload")


MALFORMED = {
    "reserved type 0": (b"\x00\x00", "section 2.2.1"),
    "reserved type 15": (b"\xf0\x00", "section 2.2.1"),
    "PUBACK flags": (b"\x41\x02\x00\x01", "MQTT-2.2.2-2"),
    "SUBSCRIBE flags": (frame(0x80, b"\x00\x01" + encode_utf8("a") + b"\x00"), "MQTT-2.2.2-1"),
    "PUBREL flags": (b"\x60\x02\x00\x01", "MQTT-2.2.2-1"),
    "PINGREQ flags": (b"\xc1\x00", "MQTT-2.2.2-2"),
    "remaining length of 5 bytes": (b"\x30\xff\xff\xff\xff\x01", "MQTT-2.2.3"),
    "remaining length 4 continuation bytes": (b"\x30\x80\x80\x80\x80", "MQTT-2.2.3"),
    "invalid UTF-8": (publish(b"a/\xff"), "MQTT-1.5.3-1"),
    "overlong UTF-8": (publish(b"\xc0\xaf"), "MQTT-1.5.3-1"),
    "UTF-16 surrogate": (publish(b"a\xed\xa0\x80"), "MQTT-1.5.3-1"),
    "U+0000 in topic": (publish(b"a\x00b"), "MQTT-1.5.3-2"),
    "U+0000 in client id": (frame(0x10, connect_body(0x02, utf8_raw(b"d\x00"))), "MQTT-1.5.3-2"),
    "PUBLISH QoS 3": (publish(b"a", qos=3, packet_id=b"\x00\x01"), "MQTT-3.3.1-4"),
    "PUBLISH '+' topic": (publish(b"a/+/b"), "MQTT-3.3.2-2"),
    "PUBLISH '#' topic": (publish(b"a/#"), "MQTT-3.3.2-2"),
    "PUBLISH empty topic": (publish(b""), "MQTT-4.7.3-1"),
    "PUBLISH DUP at QoS 0": (publish(b"a", flags=0x08), "MQTT-3.3.1-2"),
    "PUBLISH packet id 0": (publish(b"a", qos=1, packet_id=b"\x00\x00"), "MQTT-2.3.1-1"),
    "PUBACK packet id 0": (b"\x40\x02\x00\x00", "MQTT-2.3.1-1"),
    "SUBSCRIBE packet id 0": (frame(0x82, b"\x00\x00" + encode_utf8("a") + b"\x00"), "2.3.1-1"),
    "UNSUBACK packet id 0": (b"\xb0\x02\x00\x00", "MQTT-2.3.1-1"),
    "empty SUBSCRIBE": (frame(0x82, b"\x00\x01"), "MQTT-3.8.3-3"),
    "empty UNSUBSCRIBE": (frame(0xA2, b"\x00\x01"), "MQTT-3.10.3-2"),
    "SUBSCRIBE QoS 3": (frame(0x82, b"\x00\x01" + encode_utf8("a") + b"\x03"), "MQTT-3-8.3-4"),
    "SUBSCRIBE reserved bits": (frame(0x82, b"\x00\x01" + encode_utf8("a") + b"\x41"), "3-8.3-4"),
    "filter '#' not last": (frame(0xA2, b"\x00\x01" + encode_utf8("a/#/b")), "MQTT-4.7.1-2"),
    "filter 'a#'": (frame(0xA2, b"\x00\x01" + encode_utf8("a#")), "MQTT-4.7.1-2"),
    "filter 'a+'": (frame(0x82, b"\x00\x01" + encode_utf8("a/b+") + b"\x00"), "MQTT-4.7.1-3"),
    "empty filter": (frame(0xA2, b"\x00\x01" + encode_utf8("")), "MQTT-4.7.3-1"),
    "CONNECT reserved flag": (frame(0x10, connect_body(0x03)), "MQTT-3.1.2-3"),
    "password without username": (
        frame(0x10, connect_body(0x42, utf8_raw(b"dev") + utf8_raw(b"pw"))),
        "MQTT-3.1.2-22",
    ),
    "will QoS without will flag": (frame(0x10, connect_body(0x0A)), "MQTT-3.1.2-13"),
    "will retain without will flag": (frame(0x10, connect_body(0x22)), "MQTT-3.1.2-15"),
    "will QoS 3": (frame(0x10, connect_body(0x1E)), "MQTT-3.1.2-14"),
    "will topic with wildcard": (
        frame(0x10, connect_body(0x06, utf8_raw(b"d") + utf8_raw(b"a/#") + utf8_raw(b"x"))),
        "MQTT-3.3.2-2",
    ),
    "CONNECT field past the end": (frame(0x10, connect_body(0x02, b"\x00\x09dev")), "runs past"),
    "CONNECT leftover bytes": (frame(0x10, connect_body(0x02) + b"\x00"), "left over"),
    "PUBACK leftover bytes": (b"\x40\x03\x00\x01\x00", "left over"),
    "PINGREQ with a body": (b"\xc0\x01\x00", "left over"),
    "DISCONNECT with a body": (b"\xe0\x01\x00", "left over"),
    "PUBLISH topic past the end": (frame(0x30, b"\x00\x09abc"), "runs past"),
    "PUBLISH QoS 1 without id": (frame(0x32, utf8_raw(b"ab")), "runs past"),
    "CONNACK reserved flags": (b"\x20\x02\x02\x00", "section 3.2.2.1"),
    "CONNACK return code 6": (b"\x20\x02\x00\x06", "section 3.2.2.3"),
    "CONNACK session present on refusal": (b"\x20\x02\x01\x05", "MQTT-3.2.2-4"),
    "SUBACK return code 3": (b"\x90\x03\x00\x01\x03", "MQTT-3.9.3-2"),
    "SUBACK without codes": (b"\x90\x02\x00\x01", "MQTT-3.8.4-5"),
}


@pytest.mark.parametrize(("raw", "clause"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(raw: bytes, clause: str) -> None:
    with pytest.raises(MalformedPacket, match=clause.replace(".", r"\.")):
        decode_packet(raw, LIMIT)


def test_garbage_fails_on_its_first_byte() -> None:
    with pytest.raises(MalformedPacket):
        decode_packet(b"\x00", LIMIT)
    with pytest.raises(MalformedPacket):
        decode_packet(b"\x80", LIMIT)  # SUBSCRIBE flags must be 0b0010


def test_oversized_packet_is_refused_from_its_fixed_header() -> None:
    header = b"\x30" + encode_varint(320 * 1024 + 1)  # no body has arrived yet
    with pytest.raises(PacketTooLarge, match="over the limit"):
        decode_packet(header, 320 * 1024)
    with pytest.raises(NeedMoreData):
        decode_packet(b"\x30" + encode_varint(320 * 1024), 320 * 1024)


def test_packet_at_the_limit_decodes() -> None:
    raw = encode_publish("t", b"x" * 96)
    packet, used = decode_packet(raw, 99)  # 2 + 1 + 96
    assert packet == Publish("t", b"x" * 96) and used == len(raw)
    with pytest.raises(PacketTooLarge):
        decode_packet(raw, 98)


@pytest.mark.parametrize(("name", "level"), [("MQTT", 3), ("MQIsdp", 3), ("MQTT", 5), ("XY", 4)])
def test_foreign_protocol_reads_only_the_header(name: str, level: int) -> None:
    # [MQTT-3.1.2-1/2]: the rest belongs to another spec; the session refuses the CONNECT.
    body = encode_utf8(name) + bytes((level,)) + b"\x00\xff\xff\xfe garbage"
    packet, _ = decode_packet(frame(0x10, body), LIMIT)
    assert isinstance(packet, Connect)
    assert (packet.protocol_name, packet.protocol_level, packet.client_id) == (name, level, "")


# -- encoders ----------------------------------------------------------------------------


@given(packet_ids)
def test_encode_puback_matches_generic_encoder(packet_id: int) -> None:
    assert encode_puback(packet_id) == encode_packet(PubAck(packet_id))


@settings(max_examples=50)
@given(publishes())
def test_fast_publish_constructor_matches_dataclass(p: Publish) -> None:
    made = new_publish(p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id)
    assert made == p and repr(made) == repr(p) and hash(made) == hash(p)


def test_publish_encoder_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="QoS 3"):
        encode_publish("t", b"", 3, 1)
    with pytest.raises(ValueError, match="packet identifier"):
        encode_publish("t", b"", 1)
    with pytest.raises(ValueError, match="65535"):
        encode_publish("t" * 65536, b"")
    with pytest.raises(ValueError, match=re.escape("MQTT-1.5.3-2")):
        encode_packet(Subscribe(1, (("a\x00", 0),)))


def test_encoder_builds_violations_for_tests() -> None:
    # Structure only: a wildcard topic or a QoS 2 PUBLISH encodes, the decoder refuses.
    with pytest.raises(MalformedPacket):
        decode_packet(encode_packet(Publish("a/#", b"")), LIMIT)
    assert decode_packet(encode_publish("a", b"", 2, 9), LIMIT)[0].qos == 2  # type: ignore[union-attr]


def test_encode_packet_rejects_non_packets() -> None:
    with pytest.raises(TypeError):
        encode_packet("PINGREQ")  # type: ignore[arg-type]


# -- primitives and topics -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_REMAINING_LENGTH]
)
def test_varint_boundaries(value: int) -> None:
    raw = encode_varint(value)
    assert len(raw) == 1 + (value > 127) + (value > 16_383) + (value > 2_097_151)
    assert decode_varint(memoryview(raw), 0) == (value, len(raw))
    for end in range(len(raw)):
        with pytest.raises(NeedMoreData):
            decode_varint(memoryview(raw[:end]), 0)


@pytest.mark.parametrize("value", [-1, MAX_REMAINING_LENGTH + 1])
def test_varint_out_of_range(value: int) -> None:
    with pytest.raises(ValueError):
        encode_varint(value)


@pytest.mark.parametrize("topic_filter", ["#", "+", "a/+/b", "a/#", "+/+", "/", "a//b", "$SYS/#"])
def test_valid_topic_filters(topic_filter: str) -> None:
    check_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", ["", "a#", "#/a", "a/#/b", "a+", "+a/b", "a/b+/c"])
def test_invalid_topic_filters(topic_filter: str) -> None:
    with pytest.raises(MalformedPacket):
        check_topic_filter(topic_filter)


def test_exported_names() -> None:
    for name in mqtt.__all__:
        assert hasattr(mqtt, name), name
    assert {"decode_packet", "encode_packet", "ServerSession", "ConnAckCode"} <= set(mqtt.__all__)
