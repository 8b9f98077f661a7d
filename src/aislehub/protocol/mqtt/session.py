"""The server side of one MQTT 3.1.1 connection, sans-IO (in the manner of h11).

::

    AWAIT_CONNECT --CONNECT--> CONNECTING --accept()--> CONNECTED --DISCONNECT--> CLOSED
                                   └-------refuse()------------------------------> CLOSED
    any state --protocol violation (ProtocolError raised)--> FAILED

Contract with the shell that owns the socket and the clock:

* Feed every received chunk to :meth:`ServerSession.receive_data`, act on the returned
  events, then write :meth:`ServerSession.data_to_send` to the socket.
* Answer ``ConnectReceived`` with ``accept()`` or ``refuse()``. Packets a client sends
  between CONNECT and our answer are held [MQTT-3.1.4-5]; ``accept()`` returns their
  events, which the shell handles like those of ``receive_data()``.
* On :class:`ProtocolError` from any method: write ``data_to_send()`` (it may hold a
  refusing CONNACK), close the connection and count the violation.
* After :meth:`~ServerSession.refuse` or a ``DisconnectReceived`` event: write
  ``data_to_send()`` and close. Bytes arriving afterwards are ignored.
* Keep-alive [MQTT-3.1.2-24]: note the time whenever ``packets_received`` changes and close
  when ``keep_alive_timeout`` seconds pass without a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import NoReturn

from aislehub.errors import NeedMoreData, ProtocolError

from ._inflight import Inflight
from ._writers import PINGRESP_BYTES
from .codec import decode_packet_at, encode_packet, encode_puback, encode_publish
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

__all__ = ["DEFAULT_MAX_REMAINING_LENGTH", "ServerSession", "SessionState"]

#: IoT Hub caps a device-to-cloud message at 256 KiB; a topic is at most 64 KiB (a 16-bit
#: length), the packet id two bytes. 256 KiB + 64 KiB therefore admits every message IoT
#: Hub would and stops a client from making us buffer up to 256 MiB for one packet.
DEFAULT_MAX_REMAINING_LENGTH = (256 + 64) * 1024

_GRANTABLE = frozenset((0x00, 0x01, 0x80))  # no QoS 2: we never grant it


class SessionState(Enum):
    AWAIT_CONNECT = "await_connect"
    CONNECTING = "connecting"  # CONNECT received, waiting for accept() or refuse()
    CONNECTED = "connected"
    CLOSED = "closed"  # refused or DISCONNECT received: close after flushing
    FAILED = "failed"  # protocol violation: close after flushing


def _name(packet: Packet) -> str:
    return type(packet).__name__.upper()


class ServerSession:
    """One client connection: bytes in, events out; method calls in, bytes out."""

    def __init__(self, max_remaining_length: int = DEFAULT_MAX_REMAINING_LENGTH) -> None:
        self.max_remaining_length = max_remaining_length
        # Pipelining after CONNECT is allowed (section 3.1.4), but while authentication
        # runs a client may make us hold at most one packet of the largest size.
        self._hold_limit = max_remaining_length + 5
        self.state = SessionState.AWAIT_CONNECT
        #: The accepted (or pending) CONNECT; None until one arrives.
        self.connect: Connect | None = None
        #: Every control packet received, PINGREQ included: the shell's keep-alive signal.
        self.packets_received = 0
        self._buffer = bytearray()
        self._outbox: list[bytes] = []
        self._inflight = Inflight()  # outbound QoS 1 awaiting PUBACK
        self._unacked: dict[int, int] = {}  # inbound QoS 1 packet id -> deliveries to ack
        self._pending_subscribes: dict[int, int] = {}  # packet id -> number of filters
        self._pending_unsubscribes: set[int] = set()

    @property
    def keep_alive_timeout(self) -> float | None:
        """Seconds of client silence before the shell must disconnect [MQTT-3.1.2-24]."""
        if self.connect is None or self.connect.keep_alive == 0:
            return None
        return 1.5 * self.connect.keep_alive

    # -- bytes in, bytes out -------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Buffer ``data`` and return the events of every complete packet in it."""
        if self.state is SessionState.FAILED:
            raise ProtocolError("receive_data() after a protocol violation")
        if self.state is SessionState.CLOSED:
            return []  # refused [MQTT-3.1.4-5] or disconnected [MQTT-3.14.4-2]
        self._buffer += data
        if self.state is SessionState.CONNECTING and len(self._buffer) > self._hold_limit:
            self._fail("more than one maximum-size packet sent before CONNACK")
        return self._process()

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the client."""
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    def _process(self) -> list[Event]:
        events: list[Event] = []
        if self.state is SessionState.CONNECTING:
            return events  # hold pipelined packets until accept() [MQTT-3.1.4-5]
        buffer, pos, limit = self._buffer, 0, self.max_remaining_length
        try:
            with memoryview(buffer) as view:
                while True:
                    try:
                        packet, pos = decode_packet_at(view, pos, limit)
                    except NeedMoreData:
                        break
                    self.packets_received += 1
                    if type(packet) is Publish and self.state is SessionState.CONNECTED:
                        self._on_publish(packet, events)  # the hot path skips the dispatch
                        continue
                    self._handle(packet, events)
                    if self.state is not SessionState.CONNECTED:
                        break
        except ProtocolError:
            self.state = SessionState.FAILED
            raise
        if self.state is SessionState.CLOSED:
            buffer.clear()
        else:
            del buffer[:pos]
        return events

    def _fail(self, message: str) -> NoReturn:
        self.state = SessionState.FAILED
        raise ProtocolError(message)

    # -- received packets ----------------------------------------------------------------

    def _handle(self, packet: Packet, events: list[Event]) -> None:
        if self.state is SessionState.AWAIT_CONNECT:
            self._on_first_packet(packet, events)
            return
        match packet:
            case Publish():
                self._on_publish(packet, events)
            case PubAck(packet_id):
                self._on_puback(packet_id, events)
            case PingReq():
                self._outbox.append(PINGRESP_BYTES)
            case Subscribe(packet_id, filters):
                self._reserve_client_id(packet_id, "SUBSCRIBE")
                self._pending_subscribes[packet_id] = len(filters)
                events.append(SubscribeReceived(packet))
            case Unsubscribe(packet_id):
                self._reserve_client_id(packet_id, "UNSUBSCRIBE")
                self._pending_unsubscribes.add(packet_id)
                events.append(UnsubscribeReceived(packet))
            case Disconnect():
                self.state = SessionState.CLOSED
                events.append(DisconnectReceived())
            case Connect():
                self._fail("second CONNECT on one connection [MQTT-3.1.0-2]")
            case PubRec() | PubRel() | PubComp():
                self._fail(f"{_name(packet)}: QoS 2 is not supported")
            case _:
                self._fail(f"{_name(packet)} is a server-to-client packet")

    def _on_first_packet(self, packet: Packet, events: list[Event]) -> None:
        if not isinstance(packet, Connect):
            self._fail(f"first packet is {_name(packet)}, not CONNECT [MQTT-3.1.0-1]")
        if packet.protocol_level != 4:
            self._queue_connack(ConnAckCode.UNACCEPTABLE_PROTOCOL_VERSION)
            self._fail(f"protocol level {packet.protocol_level}, not 4 [MQTT-3.1.2-2]")
        if packet.protocol_name != "MQTT":
            self._fail(f"protocol name {packet.protocol_name!r}, not 'MQTT' [MQTT-3.1.2-1]")
        if not packet.client_id and not packet.clean_session:
            self._queue_connack(ConnAckCode.IDENTIFIER_REJECTED)
            self._fail("empty client id with clean session 0 [MQTT-3.1.3-8]")
        self.connect = packet
        self.state = SessionState.CONNECTING
        events.append(ConnectReceived(packet))

    def _on_publish(self, publish: Publish, events: list[Event]) -> None:
        if publish.qos == 1:
            packet_id = publish.packet_id
            assert packet_id is not None  # the decoder guarantees it for QoS > 0
            self._unacked[packet_id] = self._unacked.get(packet_id, 0) + 1
        elif publish.qos == 2:
            self._fail(
                f"PUBLISH with QoS 2 on {publish.topic!r}: QoS 2 is not supported "
                "(IoT Hub disconnects too); publish with QoS 0 or 1"
            )
        events.append(PublishReceived(publish))

    def _on_puback(self, packet_id: int, events: list[Event]) -> None:
        publish = self._inflight.settle(packet_id)
        if publish is not None:  # a stray PUBACK breaks no 3.1.1 rule: ignore it
            events.append(PubAckReceived(packet_id, publish))

    def _reserve_client_id(self, packet_id: int, name: str) -> None:
        if packet_id in self._pending_subscribes or packet_id in self._pending_unsubscribes:
            self._fail(f"{name} reuses packet id {packet_id} before its ack [MQTT-2.3.1-2]")

    # -- the application's decisions -----------------------------------------------------

    def accept(self, session_present: bool) -> list[Event]:
        """Send CONNACK 0; return events for packets the client pipelined after CONNECT."""
        self._require(SessionState.CONNECTING, "accept")
        assert self.connect is not None
        if session_present and self.connect.clean_session:
            raise ValueError("session_present with clean session 1 [MQTT-3.2.2-1]")
        self._outbox.append(encode_packet(ConnAck(session_present, ConnAckCode.ACCEPTED)))
        self.state = SessionState.CONNECTED
        return self._process()

    def refuse(self, return_code: int) -> None:
        """Send a refusing CONNACK; the shell must then close [MQTT-3.2.2-5]."""
        self._require(SessionState.CONNECTING, "refuse")
        if not 1 <= return_code <= 5:
            raise ValueError(f"refuse() needs a CONNACK return code 1..5, not {return_code}")
        self._queue_connack(ConnAckCode(return_code))
        self.state = SessionState.CLOSED
        self._buffer.clear()  # never process what followed a refused CONNECT [MQTT-3.1.4-5]

    def _queue_connack(self, code: ConnAckCode) -> None:
        self._outbox.append(encode_packet(ConnAck(False, code)))  # [MQTT-3.2.2-4]

    def ack_publish(self, packet_id: int) -> None:
        """Send PUBACK for a received QoS 1 PUBLISH (a no-op once the session has ended)."""
        if self.state is not SessionState.CONNECTED and self._ended():
            return
        count = self._unacked.pop(packet_id, 0)
        if not count:
            raise ValueError(f"no received QoS 1 PUBLISH awaits an ack with id {packet_id}")
        if count > 1:
            self._unacked[packet_id] = count - 1
        self._outbox.append(encode_puback(packet_id))

    def ack_subscribe(self, packet_id: int, return_codes: Sequence[int]) -> None:
        """Send SUBACK: one code per filter, in order [MQTT-3.8.4-5]; 0, 1 or 0x80."""
        if self._ended():
            return
        expected = self._pending_subscribes.get(packet_id)
        if expected is None:
            raise ValueError(f"no SUBSCRIBE awaits an ack with id {packet_id}")
        codes = tuple(return_codes)
        if len(codes) != expected or not _GRANTABLE.issuperset(codes):
            raise ValueError(f"SUBACK needs {expected} codes from 0, 1, 0x80; got {codes}")
        del self._pending_subscribes[packet_id]
        self._outbox.append(encode_packet(SubAck(packet_id, codes)))

    def ack_unsubscribe(self, packet_id: int) -> None:
        """Send UNSUBACK [MQTT-3.10.4-4]."""
        if self._ended():
            return
        if packet_id not in self._pending_unsubscribes:
            raise ValueError(f"no UNSUBSCRIBE awaits an ack with id {packet_id}")
        self._pending_unsubscribes.discard(packet_id)
        self._outbox.append(encode_packet(UnsubAck(packet_id)))

    def _ended(self) -> bool:
        """True once the client is gone; an error before the session was accepted."""
        if self.state is SessionState.CLOSED or self.state is SessionState.FAILED:
            return True
        if self.state is not SessionState.CONNECTED:
            raise RuntimeError(f"nothing can be sent in state {self.state.name}")
        return False

    def _require(self, state: SessionState, action: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot {action} in state {self.state.name}")

    # -- server to client messages -------------------------------------------------------

    def send_publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> int | None:
        """Queue a PUBLISH; for QoS 1 return its packet id, in flight until PUBACK.

        Once the session has ended (the client disconnected or broke the protocol) a QoS 0
        message is dropped and a QoS 1 message only joins :meth:`inflight`, so the shell
        can persist it for the next connection instead of losing it.
        """
        if qos not in (0, 1):
            raise ValueError(f"cannot send QoS {qos}: only 0 and 1 are supported")
        ended = self._ended()
        if qos == 0:
            if not ended:
                self._outbox.append(encode_publish(topic, payload, 0, retain=retain))
            return None
        packet_id = self._inflight.add(topic, payload, retain).packet_id
        if not ended:
            self._outbox.append(encode_publish(topic, payload, 1, packet_id, retain=retain))
        return packet_id

    def inflight(self) -> list[Publish]:
        """Unacknowledged outbound QoS 1 messages in send order, to persist for a
        clean_session=0 client's next connection."""
        return self._inflight.messages()

    def resend(self, publishes: Iterable[Publish]) -> None:
        """Re-send a previous connection's in-flight messages with DUP=1 and their original
        ids, in their original order [MQTT-4.4.0-1] [MQTT-4.6.0-1]; call right after
        ``accept(session_present=True)``, before any ``send_publish``."""
        self._require(SessionState.CONNECTED, "resend")
        assert self.connect is not None
        if self.connect.clean_session:
            raise RuntimeError("a clean session has nothing to resend [MQTT-3.1.2-6]")
        self._outbox += map(encode_packet, self._inflight.restore(publishes))
