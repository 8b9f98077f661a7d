"""The reference run's consumer: one process subscribed to ``devices/#`` at QoS 1.

It PUBACKs every QoS 1 PUBLISH the broker delivers (section 4.3.2) and counts them, so the
broker does real fan-out work for each message, as aislehub does real storage work. The
PUBLISH header is parsed by hand: only the fixed header, the topic length and the packet
identifier are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import struct
import time
from multiprocessing.connection import Connection
from typing import cast

from aislehub.protocol.mqtt import Connect, Subscribe, encode_packet

__all__ = ["Subscriber"]

_PUBACK = struct.Struct(">BBH").pack
TOPIC_FILTER = "devices/#"


class Subscriber:
    """The subscriber process: :meth:`start` returns once subscribed; :meth:`stop` counts."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._proc: mp.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    def start(self, timeout: float = 15.0) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_main, args=(child, self.host, self.port), name="bench-subscriber", daemon=True
        )
        self._proc.start()
        child.close()
        try:
            ready = self._pipe.poll(timeout) and self._pipe.recv() == "ready"
        except EOFError:
            ready = False
        if not ready:
            self.stop()
            raise RuntimeError(
                f"the reference subscriber did not subscribe on {self.host}:{self.port}"
            )

    def stop(self) -> int:
        """Stop the process; the number of messages it received, or -1 if unknown."""
        received = -1
        if self._pipe is not None:
            with contextlib.suppress(OSError, EOFError):
                self._pipe.send("stop")
                if self._pipe.poll(10):
                    received = int(self._pipe.recv())
            self._pipe.close()
            self._pipe = None
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._proc = None
        return received


def _main(pipe: Connection, host: str, port: int) -> None:
    try:
        import uvloop

        uvloop.run(_run(pipe, host, port))
    except ImportError:  # pragma: no cover
        asyncio.run(_run(pipe, host, port))
    finally:
        pipe.close()


class _Consumer(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.subscribed = asyncio.get_running_loop().create_future()
        self.received = 0
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        transport.write(encode_packet(Connect("bench-subscriber", None, None, True, 600)))
        transport.write(encode_packet(Subscribe(1, ((TOPIC_FILTER, 1),))))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        acks: list[bytes] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first = buf[pos]
            length, body = _remaining_length(buf, pos + 1, end)
            if length < 0 or body + length > end:
                break
            kind = first >> 4
            if kind == 3 and first & 0x06:  # PUBLISH QoS > 0: packet id after the topic
                at = body + 2 + ((buf[body] << 8) | buf[body + 1])
                acks.append(_PUBACK(0x40, 2, (buf[at] << 8) | buf[at + 1]))
                self.received += 1
            elif kind == 3:
                self.received += 1
            elif kind == 9 and not self.subscribed.done():  # SUBACK
                self.subscribed.set_result(None)
            pos = body + length
        del buf[:pos]
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("subscriber connection closed"))


def _remaining_length(buf: bytearray, pos: int, end: int) -> tuple[int, int]:
    """Section 2.2.3: (value, offset after it), or (-1, pos) when the bytes are not there."""
    value, shift = 0, 0
    while pos < end:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, pos


async def _run(pipe: Connection, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    _, consumer = await loop.create_connection(_Consumer, host, port)
    await asyncio.wait_for(consumer.subscribed, 10)
    pipe.send("ready")
    await loop.run_in_executor(None, pipe.recv)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    while time.monotonic() - started < 2:  # let queued deliveries arrive
        before = consumer.received
        await asyncio.sleep(0.2)
        if consumer.received == before:
            break
    pipe.send(consumer.received)
    if consumer.transport is not None:
        consumer.transport.close()
