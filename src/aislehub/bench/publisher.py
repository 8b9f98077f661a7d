"""One benchmark device connection: CONNECT, then QoS 1 PUBLISHes pipelined within a window.

A connection keeps ``window`` messages in flight: the PUBACKs of one read are answered with
as many new PUBLISHes in one write, until the phase's deadline.

:class:`FastPublisher` does no per-message Python work. Its packet identifiers cycle
through a ring of ``R`` ids (``R`` >= 2 x window, so an id is reused only long after its
message was acknowledged); the PUBLISHes of the ring are encoded once, back to back and
twice over, so any run of ``k`` consecutive messages is one slice. A server acknowledges
QoS 1 messages in the order it received them (both servers under test do; MQTT 3.1.1
§4.6 asks it of clients, and Ordered Topics of servers), so the expected PUBACK stream is
known too, and a whole read of PUBACKs is checked with one bytes comparison. Anything else
(a CONNACK, an out-of-order PUBACK) goes through the real decoder; an out-of-order PUBACK
is reported as an error and the connection is dropped, since a ring id could then be reused
while in flight.

:class:`RecordingPublisher` (crash test) gives every message a unique ``$.mid``
(``{device}-{seq}``) in its property bag and body, encodes each one, and keeps the ids
of the messages acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

from aislehub.bench.wire import PACKET_IDS, PublishTemplate, message_topic, telemetry_body
from aislehub.errors import NeedMoreData, ProtocolError
from aislehub.protocol.mqtt import ConnAck, PubAck, decode_packet, encode_packet, encode_publish
from aislehub.protocol.mqtt.packets import Disconnect

__all__ = ["FastPublisher", "Phase", "Publisher", "RecordingPublisher", "Tally"]

MAX_LATENCY_SAMPLES = 200_000  # per worker process; enough for a stable p99
_MAX_REMAINING = 1 << 20  # the generator only ever receives small server packets


@dataclass(slots=True)
class Phase:
    """The timed window shared by a worker's connections (``time.monotonic`` seconds)."""

    deadline: float = 0.0
    sending: bool = False


@dataclass(slots=True)
class Tally:
    """What one worker process counted, over all its connections."""

    sent: int = 0
    acked: int = 0
    acked_in_window: int = 0
    lost: int = 0
    last_ack_at: float = 0.0  # time.monotonic() of the latest PUBACK
    latencies: list[float] = field(default_factory=list)
    acked_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < 10:
            self.errors.append(text)

    def count_acks(self, count: int, now: float, deadline: float, latency: float) -> None:
        self.acked += count
        self.last_ack_at = now
        if now <= deadline:
            self.acked_in_window += count
        if len(self.latencies) < MAX_LATENCY_SAMPLES:
            self.latencies.append(latency)


class Publisher(asyncio.Protocol):
    """CONNECT/CONNACK, DISCONNECT and loss accounting; subclasses publish."""

    def __init__(
        self, device_id: str, connect: bytes, window: int, tally: Tally, phase: Phase
    ) -> None:
        loop = asyncio.get_running_loop()
        self.device_id = device_id
        self.connack: asyncio.Future[int] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.window = window
        self.tally = tally
        self.phase = phase
        self.inflight = 0
        self._connect = connect
        self._buf = bytearray()
        self._closed = False
        self._stopping = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop: no subclass
        transport.write(self._connect)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed:
            self.tally.lost += 1
            self.tally.error(f"{self.device_id}: connection lost: {exc!r}")
        self._closed = True
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(f"{self.device_id}: closed before CONNACK"))
        self._set_drained()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        now = time.monotonic()
        acked = self._read(buf, now)
        if acked and self.phase.sending and now < self.phase.deadline:
            self.send(acked, now)
        elif self._stopping and not self.inflight:
            self._set_drained()

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        """Fill the window; PUBACKs keep it full until the phase's deadline."""
        if not self._closed:
            self.send(self.window, time.monotonic())

    def stop(self) -> None:
        """Called when the window closes: resolve ``drained`` once nothing is in flight."""
        self._stopping = True
        if not self.inflight:
            self._set_drained()

    def disconnect(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.write(encode_packet(Disconnect()))
            self.transport.close()

    # -- for subclasses ------------------------------------------------------------------
    def send(self, count: int, now: float) -> None:
        raise NotImplementedError

    def _read(self, buf: bytearray, now: float) -> int:
        """Consume what ``buf`` holds; return how many messages were acknowledged."""
        return self._read_slow(buf, now)

    def on_puback(self, packet_id: int, now: float) -> bool:
        raise NotImplementedError

    def _read_slow(self, buf: bytearray, now: float) -> int:
        pos, acked = 0, 0
        while pos < len(buf):
            try:
                packet, used = decode_packet(bytes(buf[pos:]), _MAX_REMAINING)
            except NeedMoreData:
                break
            except ProtocolError as exc:
                self.fail(f"server sent garbage: {exc}")
                break
            pos += used
            if isinstance(packet, PubAck):
                if not self.on_puback(packet.packet_id, now):
                    break
                acked += 1
            elif isinstance(packet, ConnAck) and not self.connack.done():
                self.connack.set_result(packet.return_code)
        del buf[:pos]
        return acked

    def writable(self) -> asyncio.Transport | None:
        return None if self._closed else self.transport

    def fail(self, reason: str) -> None:
        self.tally.error(f"{self.device_id}: {reason}")
        if self.transport is not None:
            self.transport.abort()

    def _set_drained(self) -> None:
        if not self.drained.done():
            self.drained.set_result(None)


class FastPublisher(Publisher):
    """Pre-encoded ring of PUBLISHes; the PUBACKs of one read checked in one comparison."""

    def __init__(
        self, device_id: str, connect: bytes, window: int, tally: Tally, phase: Phase, topic: str
    ) -> None:
        super().__init__(device_id, connect, window, tally, phase)
        self.ring = ring = max(64, 2 * window)
        template = PublishTemplate(topic, telemetry_body())
        one_lap = b"".join(b"".join(template.parts(i)) for i in range(1, ring + 1))
        self._size = len(one_lap) // ring
        self._publishes = one_lap * 2
        self._acks = b"".join(b"\x40\x02" + PACKET_IDS[i] for i in range(1, ring + 1)) * 2
        self._sent_at = [0.0] * ring
        self._next_send = 0
        self._next_ack = 0

    def send(self, count: int, now: float) -> None:
        if (transport := self.writable()) is None:
            return
        first, size, ring = self._next_send, self._size, self.ring
        transport.write(self._publishes[first * size : (first + count) * size])
        end = first + count
        if end <= ring:
            self._sent_at[first:end] = [now] * count
        else:
            self._sent_at[first:] = [now] * (ring - first)
            self._sent_at[: end - ring] = [now] * (end - ring)
        self._next_send = end % ring
        self.inflight += count
        self.tally.sent += count

    def _read(self, buf: bytearray, now: float) -> int:
        count = len(buf) >> 2
        if count and count <= self.inflight:
            start = self._next_ack << 2
            if buf[: count << 2] == self._acks[start : start + (count << 2)]:
                del buf[: count << 2]
                self._acked(count, now)
                return count + (self._read_slow(buf, now) if buf else 0)
        return self._read_slow(buf, now)

    def on_puback(self, packet_id: int, now: float) -> bool:
        expected = self._next_ack + 1
        if self.inflight == 0 or packet_id != expected:
            self.fail(
                f"PUBACK {packet_id} out of order (expected {expected}, {self.inflight} in flight)"
            )
            return False
        self._acked(1, now)
        return True

    def _acked(self, count: int, now: float) -> None:
        oldest = self._sent_at[self._next_ack]  # one latency sample per read: its oldest
        self._next_ack = (self._next_ack + count) % self.ring
        self.inflight -= count
        self.tally.count_acks(count, now, self.phase.deadline, now - oldest)


class RecordingPublisher(Publisher):
    """Unique ``$.mid`` per message; remembers which were acknowledged."""

    def __init__(
        self,
        device_id: str,
        connect: bytes,
        window: int,
        tally: Tally,
        phase: Phase,
        properties: dict[str, str],
    ) -> None:
        super().__init__(device_id, connect, window, tally, phase)
        self._properties = properties
        self._pending: dict[int, tuple[float, str]] = {}
        self._last_id = 0
        self._seq = 0

    def send(self, count: int, now: float) -> None:
        if (transport := self.writable()) is None:
            return
        parts = []
        for _ in range(count):
            self._last_id = packet_id = self._last_id % 65535 + 1
            self._seq += 1
            mid = f"{self.device_id}-{self._seq}"
            self._pending[packet_id] = (now, mid)
            topic = message_topic(self.device_id, {"$.mid": mid, **self._properties})
            parts.append(encode_publish(topic, telemetry_body(self._seq, mid), 1, packet_id))
        transport.write(b"".join(parts))
        self.inflight += count
        self.tally.sent += count

    def on_puback(self, packet_id: int, now: float) -> bool:
        pending = self._pending.pop(packet_id, None)
        if pending is None:
            self.fail(f"PUBACK for unknown packet id {packet_id}")
            return False
        self.inflight -= 1
        self.tally.count_acks(1, now, self.phase.deadline, now - pending[0])
        self.tally.acked_ids.append(pending[1])
        return True
