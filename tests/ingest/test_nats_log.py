"""NatsLog only: what happens when the connection to NATS breaks.

The client talks to the machine's NATS server through a small TCP proxy that the test can
mute (hold the server's answers) or cut. What every ingest log does is the conformance
suite (tests/conformance/test_ingest_log.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from aislehub.ingest.log import IngestLogFailed
from aislehub.ingest.nats_log import NatsLog
from tests.services import require_nats, unique_name


class Proxy:
    """Forwards 127.0.0.1:<port> to the NATS server; can hold the server's bytes or cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = asyncio.Event()  # cleared: server→client bytes are held
        self.flowing.set()
        self.refusing = False
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        for src, dst, muteable in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pump(src, dst, muteable))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, muteable: bool
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                if muteable:
                    await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        dst.close()

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers = []

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@asynccontextmanager
async def proxied_log(ack_timeout: float = 5.0) -> AsyncIterator[tuple[NatsLog, Proxy]]:
    parts = urlsplit(require_nats())
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 4222))
    stream = unique_name("nats_log").upper()
    log = NatsLog(await proxy.start(), stream, f"test.{stream}", ack_timeout=ack_timeout)
    await log.start()
    try:
        yield log, proxy
    finally:
        proxy.flowing.set()
        proxy.refusing = False
        await _until(lambda: log._connected)
        await log.delete_stream()
        await log.close()
        await proxy.close()


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls the client's connection state
            await asyncio.sleep(0.01)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def test_a_disconnect_fails_appends_in_flight_and_refuses_new_ones() -> None:
    async def body() -> None:
        async with proxied_log() as (log, proxy):
            before = await log.append(b"before")
            proxy.flowing.clear()  # JetStream stores these, but the acks never come back
            futures = [log.append(b"in-flight-%d" % i) for i in range(50)]
            await asyncio.sleep(0.1)
            proxy.refusing = True
            proxy.cut()
            results = await asyncio.gather(*futures, return_exceptions=True)
            assert all(isinstance(r, IngestLogFailed) for r in results)
            await _until(lambda: not log._connected)
            with pytest.raises(IngestLogFailed, match="not connected"):
                log.append(b"while-down")
            proxy.flowing.set()
            proxy.refusing = False
            await _until(lambda: log._connected)
            # Appending works again; the unacknowledged records may be stored (a device
            # re-sends them and the store writer drops duplicates); the 50 went as one
            # message, so the next is that one's successor or the one after.
            after = await log.append(b"after")
            assert after >> 16 in (2, 3) and after > before
            assert log.durable_offset >= after

    run(body)


def test_an_ack_that_never_comes_fails_the_append() -> None:
    async def body() -> None:
        async with proxied_log(ack_timeout=0.3) as (log, proxy):
            proxy.flowing.clear()
            future = log.append(b"unanswered")
            with pytest.raises(IngestLogFailed, match="no JetStream ack"):
                await asyncio.wait_for(future, 3)
            assert log.durable_offset == -1

    run(body)
