"""Fuzz the MQTT codec and the server session: only ``ProtocolError`` may escape.

Feeds random bytes and mutated valid packets to ``decode_packet``, and mutated client
streams, cut into random chunks, to ``ServerSession.receive_data`` while playing a correct
application (accepting, acking, publishing). Any other exception is a bug: it is printed
with the input that caused it and the run exits 1.

    .venv/bin/python bench/fuzz_mqtt.py --seconds 60 [--seed 1234]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable

from aislehub.errors import ProtocolError
from aislehub.protocol.mqtt import (
    ConnAck,
    Connect,
    ConnectReceived,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    PublishReceived,
    ServerSession,
    SubAck,
    Subscribe,
    SubscribeReceived,
    UnsubAck,
    Unsubscribe,
    UnsubscribeReceived,
    Will,
    decode_packet,
    encode_packet,
)

LIMIT = 4096  # small, so that PacketTooLarge is reached too
_TOPICS = ("t", "devices/d/messages/events/", "a/b/c", "é/ü", "$iothub/twin/GET/?$rid=1")
_FILTERS = ("#", "+", "a/+/c", "devices/d/#", "$iothub/methods/POST/#", "x")


class FuzzFailure(Exception):
    """A non-protocol exception escaped: the input is attached."""

    def __init__(self, what: str, data: bytes) -> None:
        super().__init__(f"{what} on input {data.hex()}")
        self.data = data


def random_packet(rng: random.Random, client_only: bool = False) -> Packet:
    packet_id = rng.randint(1, 0xFFFF)
    topic, payload = rng.choice(_TOPICS), rng.randbytes(rng.choice((0, 5, 120, 300)))
    qos = rng.randint(0, 1)
    client: list[Callable[[], Packet]] = [
        lambda: Publish(topic, payload, qos, rng.random() < 0.1, False, packet_id if qos else None),
        lambda: PubAck(rng.randint(1, 4)),
        lambda: Subscribe(
            packet_id, tuple((f, rng.randint(0, 2)) for f in rng.sample(_FILTERS, 2))
        ),
        lambda: Unsubscribe(packet_id, (rng.choice(_FILTERS),)),
        PingReq,
    ]
    other: list[Callable[[], Packet]] = [
        lambda: Connect(
            rng.choice(("", "dev-1")),
            rng.choice((None, "hub/dev-1")),
            None,
            rng.random() < 0.5,
            rng.randint(0, 300),
            Will(topic, payload[:20], qos) if rng.random() < 0.2 else None,
        ),
        lambda: SubAck(packet_id, (0, 0x80)),
        lambda: ConnAck(False, 0),
        lambda: UnsubAck(packet_id),
        PingResp,
        Disconnect,
    ]
    return rng.choice(client if client_only else client + other)()


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(data) + 1)
        match rng.randrange(6):
            case 0 if data:
                data[min(where, len(data) - 1)] ^= 1 << rng.randrange(8)
            case 1 if data:
                data[min(where, len(data) - 1)] = rng.randrange(256)
            case 2:
                data[where:where] = rng.randbytes(rng.randint(1, 8))
            case 3:
                del data[where : where + rng.randint(1, 8)]
            case 4:
                data = data[:where]
            case _:
                data[where:where] = data[: rng.randint(1, 16)]
    return bytes(data)


def fuzz_decode(rng: random.Random, counts: Counter[str]) -> None:
    if rng.random() < 0.3:
        data = rng.randbytes(rng.randint(0, 64))
    else:
        data = mutate(rng, encode_packet(random_packet(rng)))
    try:
        decode_packet(data, LIMIT)
        counts["decode ok"] += 1
    except ProtocolError as exc:
        counts[f"decode {type(exc).__name__}"] += 1
    except Exception as exc:
        raise FuzzFailure(f"decode_packet raised {exc!r}", data) from exc


def fuzz_session(rng: random.Random, counts: Counter[str]) -> None:
    stream = [encode_packet(Connect("dev-1", None, None, rng.random() < 0.5, 60))]
    stream += [
        encode_packet(random_packet(rng, client_only=rng.random() < 0.8))
        for _ in range(rng.randint(0, 8))
    ]
    if rng.random() < 0.7:
        index = rng.randrange(len(stream))
        stream[index] = mutate(rng, stream[index])
    data = b"".join(stream)
    session = ServerSession(max_remaining_length=LIMIT)
    try:
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 64)
            for event in session.receive_data(data[pos : pos + size]):
                _play_application(rng, session, event)
            pos += size
        counts["session ok"] += 1
    except ProtocolError as exc:
        counts[f"session {type(exc).__name__}"] += 1
    except Exception as exc:
        raise FuzzFailure(f"ServerSession raised {exc!r}", data) from exc
    session.data_to_send()


def _play_application(rng: random.Random, session: ServerSession, event: object) -> None:
    """Answer events the way a correct gateway would; pipelined events recurse."""
    match event:
        case ConnectReceived():
            if rng.random() < 0.1:
                session.refuse(5)
                return
            for later in session.accept(session_present=False):
                _play_application(rng, session, later)
            session.send_publish("c2d", b"hello", qos=rng.randint(0, 1))
        case PublishReceived(publish) if publish.packet_id is not None:
            session.ack_publish(publish.packet_id)
        case SubscribeReceived(subscribe):
            session.ack_subscribe(subscribe.packet_id, [0x80] * len(subscribe.filters))
        case UnsubscribeReceived(unsubscribe):
            session.ack_unsubscribe(unsubscribe.packet_id)


def run(seconds: float, seed: int) -> Counter[str]:
    rng, counts = random.Random(seed), Counter[str]()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            fuzz_decode(rng, counts)
            fuzz_session(rng, counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 32))
    args = parser.parse_args(argv)
    print(f"fuzzing for {args.seconds:g} s with --seed {args.seed}")
    try:
        counts = run(args.seconds, args.seed)
    except FuzzFailure:
        traceback.print_exc()
        print(f"FAILED: rerun with --seed {args.seed}", file=sys.stderr)
        return 1
    for name, count in sorted(counts.items()):
        print(f"{count:>10,}  {name}")
    print(f"{sum(counts.values()):>10,}  inputs, no unexpected exception")
    return 0


if __name__ == "__main__":
    sys.exit(main())
