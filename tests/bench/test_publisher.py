"""The generator's connections against an in-memory transport: ids, windows, PUBACK checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aislehub.bench.publisher import FastPublisher, Phase, Publisher, RecordingPublisher, Tally
from aislehub.bench.stats import percentile
from aislehub.protocol.mqtt import Publish, decode_packet, encode_puback

CONNACK = bytes((0x20, 2, 0, 0))
TOPIC = "devices/d1/messages/events/phase=t"


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass

    def publishes(self) -> list[Publish]:
        found, pos = [], 0
        while pos < len(self.written):
            packet, used = decode_packet(bytes(self.written[pos:]), 1 << 20)
            pos += used
            if isinstance(packet, Publish):
                found.append(packet)
        self.written.clear()
        return found


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def connected(publisher: Publisher) -> FakeTransport:
    transport = FakeTransport()
    publisher.connection_made(transport)  # type: ignore[arg-type]
    publisher.data_received(CONNACK)
    assert publisher.connack.result() == 0
    transport.written.clear()
    return transport


def sending_phase() -> Phase:
    return Phase(deadline=time.monotonic() + 60, sending=True)


def test_fast_publisher_keeps_its_window_full_across_the_id_ring() -> None:
    async def body() -> None:
        tally = Tally()
        pub = FastPublisher("d1", b"", 3, tally, sending_phase(), TOPIC)
        transport = connected(pub)
        pub.start()
        ids = [p.packet_id for p in transport.publishes()]
        assert ids == [1, 2, 3]
        for _ in range(pub.ring + 10):  # ack the oldest one by one, past the ring's end
            oldest = ids.pop(0)
            assert oldest is not None
            pub.data_received(encode_puback(oldest))
            sent = transport.publishes()
            assert len(sent) == 1 and sent[0].topic == TOPIC and sent[0].qos == 1
            ids.append(sent[0].packet_id)
        assert ids == [11, 12, 13]  # wrapped around the ring of 64 ids
        assert tally.acked == tally.acked_in_window == pub.ring + 10
        assert tally.sent == pub.ring + 13 and pub.inflight == 3 and not tally.errors

    run(body)


def test_fast_publisher_takes_acks_split_across_reads() -> None:
    async def body() -> None:
        tally = Tally()
        pub = FastPublisher("d1", b"", 4, tally, sending_phase(), TOPIC)
        transport = connected(pub)
        pub.start()
        transport.publishes()
        acks = b"".join(encode_puback(i) for i in (1, 2, 3))
        pub.data_received(acks[:5])
        pub.data_received(acks[5:])
        assert tally.acked == 3 and [p.packet_id for p in transport.publishes()] == [5, 6, 7]

    run(body)


def test_fast_publisher_drops_the_connection_on_an_out_of_order_puback() -> None:
    async def body() -> None:
        tally = Tally()
        pub = FastPublisher("d1", b"", 3, tally, sending_phase(), TOPIC)
        transport = connected(pub)
        pub.start()
        pub.data_received(encode_puback(2))
        assert transport.aborted and "out of order" in tally.errors[0]

    run(body)


def test_fast_publisher_stops_at_the_deadline_and_drains() -> None:
    async def body() -> None:
        tally, phase = Tally(), sending_phase()
        pub = FastPublisher("d1", b"", 2, tally, phase, TOPIC)
        transport = connected(pub)
        pub.start()
        transport.publishes()
        phase.sending = False
        pub.stop()
        assert not pub.drained.done()
        pub.data_received(encode_puback(1) + encode_puback(2))
        assert pub.drained.done() and transport.publishes() == [] and tally.acked == 2

    run(body)


def test_recording_publisher_gives_each_message_an_id_and_keeps_the_acked_ones() -> None:
    async def body() -> None:
        tally = Tally()
        pub = RecordingPublisher("d1", b"", 2, tally, sending_phase(), {})
        transport = connected(pub)
        pub.start()
        sent = transport.publishes()
        assert [p.topic for p in sent] == [
            "devices/d1/messages/events/%24.mid=d1-1",
            "devices/d1/messages/events/%24.mid=d1-2",
        ]
        assert b'"mid":"d1-2"' in sent[1].payload
        pub.data_received(encode_puback(2))  # any order: ids are looked up
        assert tally.acked_ids == ["d1-2"]

    run(body)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile([], 50) is None and percentile([3.0], 99) == 3.0
