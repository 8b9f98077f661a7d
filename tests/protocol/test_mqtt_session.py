"""ServerSession paired in memory with the codec playing the client."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aislehub.errors import MalformedPacket, PacketTooLarge, ProtocolError
from aislehub.protocol.mqtt import (
    ConnAck,
    ConnAckCode,
    Connect,
    ConnectReceived,
    Disconnect,
    DisconnectReceived,
    Event,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubAckReceived,
    PubComp,
    Publish,
    PublishReceived,
    PubRec,
    PubRel,
    ServerSession,
    SessionState,
    SubAck,
    Subscribe,
    SubscribeReceived,
    UnsubAck,
    Unsubscribe,
    UnsubscribeReceived,
    decode_packet,
    encode_packet,
)
from aislehub.protocol.mqtt._inflight import Inflight

CONNECT = Connect("dev-1", "hub/dev-1", b"token", clean_session=True, keep_alive=60)
RESUME = Connect("dev-1", None, None, clean_session=False, keep_alive=0)


def wire(*packets: Packet) -> bytes:
    return b"".join(encode_packet(packet) for packet in packets)


def received(session: ServerSession) -> list[Packet]:
    """What the client reads: every packet in the session's outbound bytes."""
    data, out = session.data_to_send(), []
    while data:
        packet, used = decode_packet(data, 1 << 20)
        out.append(packet)
        data = data[used:]
    return out


def connected(connect: Connect = CONNECT, session_present: bool = False) -> ServerSession:
    session = ServerSession()
    assert session.receive_data(wire(connect)) == [ConnectReceived(connect)]
    assert session.accept(session_present) == []
    assert received(session) == [ConnAck(session_present, 0)]
    return session


# -- CONNECT / CONNACK -------------------------------------------------------------------


def test_connect_then_accept() -> None:
    assert ServerSession().state is SessionState.AWAIT_CONNECT
    session = ServerSession()
    assert session.receive_data(wire(CONNECT)) == [ConnectReceived(CONNECT)]
    assert (session.state, session.connect) == (SessionState.CONNECTING, CONNECT)
    assert session.data_to_send() == b""
    session.accept(session_present=False)
    assert session.state is SessionState.CONNECTED
    assert received(session) == [ConnAck(False, ConnAckCode.ACCEPTED)]


def test_connect_byte_by_byte() -> None:
    session, raw = ServerSession(), wire(CONNECT)
    assert all(session.receive_data(raw[i : i + 1]) == [] for i in range(len(raw) - 1))
    assert session.receive_data(raw[-1:]) == [ConnectReceived(CONNECT)]


def test_keep_alive_timeout() -> None:
    # The shell disconnects after 1.5 x keep-alive of silence; 0 disables it [MQTT-3.1.2-24].
    assert ServerSession().keep_alive_timeout is None
    assert connected().keep_alive_timeout == 90.0
    assert connected(RESUME).keep_alive_timeout is None


def test_session_present_only_without_clean_session() -> None:
    connected(RESUME, session_present=True)
    session = ServerSession()
    session.receive_data(wire(CONNECT))
    with pytest.raises(ValueError, match=re.escape("MQTT-3.2.2-1")):
        session.accept(session_present=True)


def test_refuse_sends_connack_and_ignores_the_rest() -> None:
    session = ServerSession()
    session.receive_data(wire(CONNECT, Publish("a", b"x")))
    session.refuse(ConnAckCode.NOT_AUTHORIZED)
    assert received(session) == [ConnAck(False, 5)]
    assert session.state is SessionState.CLOSED
    assert session.receive_data(wire(Publish("a", b"y"))) == []  # [MQTT-3.1.4-5]
    with pytest.raises(RuntimeError, match="CLOSED"):
        session.accept(False)


def test_refuse_rejects_accepted_code() -> None:
    session = ServerSession()
    session.receive_data(wire(CONNECT))
    with pytest.raises(ValueError, match=re.escape("1..5")):
        session.refuse(0)


def test_packets_pipelined_after_connect_wait_for_accept() -> None:
    # Section 3.1.4: a client may send packets before CONNACK; we hold them until accepted.
    session = ServerSession()
    subscribe = Subscribe(1, (("devices/dev-1/#", 1),))
    assert session.receive_data(wire(CONNECT, subscribe)) == [ConnectReceived(CONNECT)]
    assert session.receive_data(wire(PingReq())) == []
    assert session.accept(False) == [SubscribeReceived(subscribe)]
    assert received(session) == [ConnAck(False, 0), PingResp()]


def test_too_much_pipelined_data_is_a_violation() -> None:
    session = ServerSession(max_remaining_length=100)
    session.receive_data(wire(CONNECT))
    with pytest.raises(ProtocolError, match="before CONNACK"):
        session.receive_data(wire(Publish("a", b"x" * 90), Publish("a", b"x" * 90)))


@pytest.mark.parametrize("level", [3, 5])
def test_unsupported_protocol_level_gets_connack_1(level: int) -> None:
    session = ServerSession()
    with pytest.raises(ProtocolError, match=re.escape("MQTT-3.1.2-2")):
        session.receive_data(wire(Connect("d", None, None, True, 0, protocol_level=level)))
    assert received(session) == [ConnAck(False, ConnAckCode.UNACCEPTABLE_PROTOCOL_VERSION)]
    assert session.state is SessionState.FAILED
    with pytest.raises(ProtocolError):
        session.receive_data(b"")


def test_wrong_protocol_name_is_dropped_without_connack() -> None:
    session = ServerSession()
    with pytest.raises(ProtocolError, match=re.escape("MQTT-3.1.2-1")):
        session.receive_data(wire(Connect("d", None, None, True, 0, protocol_name="MQTX")))
    assert session.data_to_send() == b""


def test_empty_client_id_needs_clean_session() -> None:
    session = ServerSession()
    with pytest.raises(ProtocolError, match=re.escape("MQTT-3.1.3-8")):
        session.receive_data(wire(Connect("", None, None, False, 0)))
    assert received(session) == [ConnAck(False, ConnAckCode.IDENTIFIER_REJECTED)]
    connected(Connect("", None, None, True, 0))  # the application decides about this one


# -- state violations ---------------------------------------------------------------------


@pytest.mark.parametrize("first", [PingReq(), Publish("a", b""), Disconnect()])
def test_first_packet_must_be_connect(first: Packet) -> None:
    with pytest.raises(ProtocolError, match=re.escape("MQTT-3.1.0-1")):
        ServerSession().receive_data(wire(first))


def test_second_connect_is_a_violation() -> None:
    session = connected()
    with pytest.raises(ProtocolError, match=re.escape("MQTT-3.1.0-2")):
        session.receive_data(wire(CONNECT))
    assert session.state is SessionState.FAILED


@pytest.mark.parametrize(
    "packet", [ConnAck(False, 0), SubAck(1, (0,)), UnsubAck(1), PingResp()], ids=repr
)
def test_server_packets_from_a_client_are_violations(packet: Packet) -> None:
    with pytest.raises(ProtocolError, match="server-to-client"):
        connected().receive_data(wire(packet))


@pytest.mark.parametrize(
    "packet", [Publish("a", b"", qos=2, packet_id=1), PubRec(1), PubRel(1), PubComp(1)], ids=repr
)
def test_qos_2_is_refused(packet: Packet) -> None:
    with pytest.raises(ProtocolError, match="QoS 2"):
        connected().receive_data(wire(packet))


def test_malformed_and_oversized_packets_fail_the_session() -> None:
    session = connected()
    with pytest.raises(MalformedPacket):
        session.receive_data(b"\x00\x00")
    assert session.state is SessionState.FAILED
    small = ServerSession(max_remaining_length=50)
    small.receive_data(wire(CONNECT))
    small.accept(False)
    with pytest.raises(PacketTooLarge):
        small.receive_data(b"\x30\x80\x01")  # 128 bytes announced, none sent


# -- PUBLISH, both directions --------------------------------------------------------------


def test_inbound_qos0_and_qos1() -> None:
    session = connected()
    p0, p1 = Publish("t", b"0"), Publish("t", b"1", qos=1, packet_id=7)
    assert session.receive_data(wire(p0, p1)) == [PublishReceived(p0), PublishReceived(p1)]
    assert session.data_to_send() == b""  # the application decides when to ack
    session.ack_publish(7)
    assert received(session) == [PubAck(7)]
    with pytest.raises(ValueError, match="id 7"):
        session.ack_publish(7)


def test_inbound_duplicate_is_acked_per_delivery() -> None:
    session = connected()
    p1 = Publish("t", b"1", qos=1, packet_id=3)
    session.receive_data(wire(p1, Publish("t", b"1", qos=1, dup=True, packet_id=3)))
    session.ack_publish(3)
    session.ack_publish(3)
    assert received(session) == [PubAck(3), PubAck(3)]


def test_outbound_qos0_and_qos1() -> None:
    session = connected()
    assert session.send_publish("c2d", b"zero") is None
    assert session.send_publish("c2d", b"one", qos=1) == 1
    assert session.send_publish("c2d", b"two", qos=1, retain=True) == 2
    sent = [
        Publish("c2d", b"zero"),
        Publish("c2d", b"one", 1, packet_id=1),
        Publish("c2d", b"two", 1, retain=True, packet_id=2),
    ]
    assert received(session) == sent
    assert session.inflight() == sent[1:]
    events = session.receive_data(wire(PubAck(2), PubAck(99)))  # 99: stray, ignored
    assert events == [PubAckReceived(2, sent[2])]
    assert session.inflight() == [sent[1]]
    with pytest.raises(ValueError, match="QoS 2"):
        session.send_publish("c2d", b"", qos=2)


def test_send_publish_needs_an_accepted_connection() -> None:
    session = ServerSession()
    session.receive_data(wire(CONNECT))
    with pytest.raises(RuntimeError, match="CONNECTING"):
        session.send_publish("t", b"")


def test_send_publish_after_the_end_keeps_qos1_for_the_next_connection() -> None:
    session = connected(RESUME)
    session.receive_data(wire(Disconnect()))
    assert session.send_publish("c2d", b"lost") is None  # QoS 0: at most once
    assert session.send_publish("c2d", b"kept", qos=1) == 1
    assert session.data_to_send() == b""
    assert session.inflight() == [Publish("c2d", b"kept", 1, packet_id=1)]


def test_packet_ids_skip_those_in_flight() -> None:
    session = connected()
    assert [session.send_publish("t", b"", qos=1) for _ in range(3)] == [1, 2, 3]
    session.receive_data(wire(PubAck(2)))
    assert session.send_publish("t", b"", qos=1) == 4  # the search goes on after 3
    assert [p.packet_id for p in session.inflight()] == [1, 3, 4]


def test_packet_ids_wrap_around() -> None:
    # Exercised on the session's bookkeeping object: 65535 sends through the session
    # would add encoding time and nothing else.
    inflight = Inflight()
    assert [inflight.add("t", b"", False).packet_id for _ in range(0xFFFF)] == list(
        range(1, 0x10000)
    )
    with pytest.raises(RuntimeError, match="65535"):
        inflight.add("t", b"", False)
    inflight.settle(20)
    inflight.settle(10)
    assert [inflight.add("t", b"", False).packet_id for _ in range(2)] == [10, 20]
    inflight.settle(5)
    inflight.settle(30)  # the search goes on from 21, then wraps past 65535 to 1
    assert [inflight.add("t", b"", False).packet_id for _ in range(2)] == [30, 5]


def test_inflight_survives_into_the_next_connection_with_dup() -> None:
    first = connected(RESUME)
    for body in (b"a", b"b", b"c"):
        first.send_publish("c2d", body, qos=1)
    first.receive_data(wire(PubAck(2)))
    pending = first.inflight()
    assert [(p.packet_id, p.payload) for p in pending] == [(1, b"a"), (3, b"c")]

    second = connected(RESUME, session_present=True)
    second.resend(pending)  # [MQTT-4.4.0-1]: same ids, original order, DUP set
    resent = [
        Publish("c2d", b"a", 1, dup=True, packet_id=1),
        Publish("c2d", b"c", 1, dup=True, packet_id=3),
    ]
    assert received(second) == resent
    assert second.send_publish("c2d", b"d", qos=1) == 2  # ids 1 and 3 are reserved
    assert second.receive_data(wire(PubAck(3))) == [PubAckReceived(3, resent[1])]


def test_resend_checks_its_input() -> None:
    with pytest.raises(RuntimeError, match="clean session"):
        connected().resend([])
    session = connected(RESUME)
    with pytest.raises(ValueError):
        session.resend([Publish("t", b"")])
    with pytest.raises(ValueError):
        session.resend([Publish("t", b"", 1, packet_id=4)] * 2)
    session.send_publish("t", b"", qos=1)
    with pytest.raises(ValueError, match="already in flight"):
        session.resend([Publish("t", b"", 1, packet_id=1)])


# -- SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT ---------------------------------------------


def test_subscribe_and_unsubscribe() -> None:
    session = connected()
    subscribe = Subscribe(4, (("devices/dev-1/messages/devicebound/#", 1), ("$iothub/#", 0)))
    unsubscribe = Unsubscribe(5, ("$iothub/#",))
    events = session.receive_data(wire(subscribe, unsubscribe))
    assert events == [SubscribeReceived(subscribe), UnsubscribeReceived(unsubscribe)]
    with pytest.raises(ValueError, match="2 codes"):
        session.ack_subscribe(4, [1])
    with pytest.raises(ValueError, match="2 codes"):
        session.ack_subscribe(4, [2, 0])  # we never grant QoS 2
    session.ack_subscribe(4, [1, 0x80])
    session.ack_unsubscribe(5)
    assert received(session) == [SubAck(4, (1, 0x80)), UnsubAck(5)]
    with pytest.raises(ValueError):
        session.ack_unsubscribe(5)


def test_subscribe_reusing_a_pending_id_is_a_violation() -> None:
    session = connected()
    session.receive_data(wire(Subscribe(4, (("a", 0),))))
    with pytest.raises(ProtocolError, match=re.escape("MQTT-2.3.1-2")):
        session.receive_data(wire(Unsubscribe(4, ("a",))))


def test_pingreq_is_answered_without_an_event() -> None:
    session = connected()
    before = session.packets_received
    assert session.receive_data(wire(PingReq(), PingReq())) == []
    assert received(session) == [PingResp(), PingResp()]
    assert session.packets_received == before + 2


def test_disconnect_ends_the_session() -> None:
    session = connected()
    session.receive_data(wire(Publish("t", b"", 1, packet_id=1)))
    events = session.receive_data(wire(Disconnect(), Publish("t", b"late")))
    assert events == [DisconnectReceived()]
    assert session.state is SessionState.CLOSED
    assert session.receive_data(wire(PingReq())) == []
    session.ack_publish(1)  # acking after the end is a harmless no-op
    assert session.data_to_send() == b""


# -- chunking ----------------------------------------------------------------------------

_client_packets = st.one_of(
    st.builds(Publish, st.sampled_from(["t", "a/b"]), st.binary(max_size=200)),
    st.builds(
        Publish, st.just("q"), st.binary(max_size=20), st.just(1), packet_id=st.integers(1, 9)
    ),
    st.just(PingReq()),
    st.builds(PubAck, st.integers(1, 3)),  # nothing is in flight: ignored
)


@settings(max_examples=60)
@given(st.lists(_client_packets, max_size=12), st.lists(st.integers(1, 64), min_size=1))
def test_any_chunking_gives_the_same_events(packets: list[Packet], sizes: list[int]) -> None:
    stream = wire(CONNECT, *packets)
    whole, chunked = ServerSession(), ServerSession()
    expected = _drive(whole, [stream])
    chunks: list[bytes] = []
    pos = 0
    while pos < len(stream):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(stream[pos : pos + size])
        pos += size
    assert _drive(chunked, chunks) == expected
    assert chunked.data_to_send() == whole.data_to_send()


def _drive(session: ServerSession, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        for event in session.receive_data(chunk):
            events.append(event)
            if isinstance(event, ConnectReceived):
                events += session.accept(False)
    return events
