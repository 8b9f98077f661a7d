"""The load generator: worker processes, each an event loop holding its share of connections.

Sequence, so that connection setup stays outside the timed window:

1. the parent spawns ``processes`` workers, each with a slice of the device ids;
2. each worker opens all its connections (bounded concurrency, CONNACK awaited) and
   reports ``ready``;
3. the parent sends every worker the same start instant (``time.monotonic`` is one clock
   for all processes on Linux); each fills its windows at that instant and keeps them full
   until ``start + seconds``;
4. workers wait for in-flight messages to be acknowledged (at most ``drain_timeout``),
   send DISCONNECT and report their tallies through their pipe.

Resource handling: workers are daemon processes, joined (or killed) before
:func:`run_load` returns; every wait on a worker has a timeout.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import ssl
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from aislehub.bench.publisher import FastPublisher, Phase, Publisher, RecordingPublisher, Tally
from aislehub.bench.wire import Target, connect_packet, message_topic

__all__ = ["LoadError", "LoadResult", "LoadSpec", "run_load"]

START_DELAY = 0.05  # seconds between "go" and the common start instant
# Allowance per connection when waiting for all workers to connect: a TLS handshake plus a
# CONNECT costs the server a few milliseconds, so 10,000 devices may take a minute or two.
SETUP_PER_CONNECTION = 0.02


class LoadError(RuntimeError):
    """The generator could not run the load it was asked for."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    target: Target
    device_ids: tuple[str, ...]
    seconds: float
    window: int = 20
    processes: int = 1
    record_ids: bool = False
    properties: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 120.0
    # Connections opened at once, over all workers: below Mosquitto's listen backlog (100),
    # whose overflow costs a 1 s SYN retransmit.
    connect_concurrency: int = 64
    drain_timeout: float = 5.0


@dataclass(slots=True)
class LoadResult:
    connections: int = 0
    connect_failures: int = 0
    seconds: float = 0.0
    sent: int = 0
    acked: int = 0
    acked_in_window: int = 0
    lost_connections: int = 0
    latencies: list[float] = field(default_factory=list)
    acked_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connect_seconds: float = 0.0  # the slowest worker's time to open all its connections
    setup_seconds: float = 0.0  # from spawning the workers until all were connected
    started_at: float = 0.0  # time.monotonic() at which the timed window opened
    last_ack_at: float = 0.0  # time.monotonic() of the last PUBACK, drain included

    @property
    def acked_per_s(self) -> float:
        """PUBACKs received inside the window, per second of window."""
        return self.acked_in_window / self.seconds if self.seconds else 0.0

    @property
    def drained_per_s(self) -> float:
        """Every PUBACK over the time from the window's start to the last one.

        Against a server that acknowledges in large rounds, ``acked_per_s`` moves in steps
        of one round (window x connections); this figure does not.
        """
        span = self.last_ack_at - self.started_at
        return self.acked / span if self.acked and span > 0 else 0.0


def run_load(spec: LoadSpec, on_start: Callable[[], None] | None = None) -> LoadResult:
    """Run ``spec`` to completion; ``on_start`` is called as the timed window opens."""
    count = max(1, min(spec.processes, len(spec.device_ids)))
    shares = [spec.device_ids[i::count] for i in range(count)]
    ctx = mp.get_context("spawn")
    workers: list[tuple[mp.process.BaseProcess, Connection]] = []
    began = time.monotonic()
    try:
        for i, share in enumerate(shares):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                args=(child, replace(spec, device_ids=share)),
                name=f"bench-worker-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            workers.append((proc, parent))
        return _drive(spec, [pipe for _, pipe in workers], on_start, began)
    finally:
        for _, pipe in workers:
            pipe.close()  # a worker still waiting for "go" sees EOF and exits
        for worker, _ in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join(5)


def _drive(
    spec: LoadSpec, pipes: list[Connection], on_start: Callable[[], None] | None, began: float
) -> LoadResult:
    result = LoadResult(seconds=spec.seconds)
    setup_limit = spec.connect_timeout + 30 + SETUP_PER_CONNECTION * len(spec.device_ids)
    for pipe in pipes:
        ready = _receive(pipe, max(0.0, began + setup_limit - time.monotonic()), "ready")
        result.connections += ready["connected"]
        result.connect_failures += ready["failed"]
        result.errors += ready["errors"]
        result.connect_seconds = max(result.connect_seconds, ready["seconds"])
    result.setup_seconds = time.monotonic() - began
    if result.connections == 0:
        for pipe in pipes:
            pipe.send(("stop", 0.0))
        raise LoadError(f"no connection succeeded: {result.errors[:3]}")
    start = result.started_at = time.monotonic() + START_DELAY
    for pipe in pipes:
        pipe.send(("go", start))
    if on_start is not None:
        on_start()
    for pipe in pipes:
        _merge(result, _receive(pipe, spec.seconds + spec.drain_timeout + 60, "result"))
    return result


def _receive(pipe: Connection, timeout: float, kind: str) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise LoadError(f"a worker sent no {kind!r} within {timeout:.0f} s")
    try:
        tag, body = pipe.recv()
    except EOFError:
        raise LoadError(f"a worker died before sending {kind!r}") from None
    if tag == "error":
        raise LoadError(f"a worker failed:\n{body}")
    assert tag == kind, (tag, kind)
    return dict(body)


def _merge(result: LoadResult, tally: dict[str, Any]) -> None:
    for name in ("sent", "acked", "acked_in_window", "lost"):
        attr = "lost_connections" if name == "lost" else name
        setattr(result, attr, getattr(result, attr) + tally[name])
    result.last_ack_at = max(result.last_ack_at, tally["last_ack_at"])
    result.latencies += tally["latencies"]
    result.acked_ids += tally["acked_ids"]
    result.errors += tally["errors"]


# -- worker process --------------------------------------------------------------------------


def _worker_main(pipe: Connection, spec: LoadSpec) -> None:
    try:
        try:
            import uvloop

            uvloop.run(_worker(pipe, spec))
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            asyncio.run(_worker(pipe, spec))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


async def _worker(pipe: Connection, spec: LoadSpec) -> None:
    tally, phase = Tally(), Phase()
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    conns, failures = await _connect_all(spec, tally, phase)
    took = time.monotonic() - began
    ready = {"connected": len(conns), "failed": failures, "errors": tally.errors, "seconds": took}
    pipe.send(("ready", ready))
    tally.errors = []
    command, start = await loop.run_in_executor(None, pipe.recv)
    if command == "go":
        await _run_window(spec, conns, phase, start)
    for conn in conns:
        conn.disconnect()
    await asyncio.sleep(0.05)  # let DISCONNECTs reach the sockets
    pipe.send(
        (
            "result",
            {
                "sent": tally.sent,
                "acked": tally.acked,
                "acked_in_window": tally.acked_in_window,
                "lost": tally.lost,
                "last_ack_at": tally.last_ack_at,
                "latencies": tally.latencies,
                "acked_ids": tally.acked_ids,
                "errors": tally.errors,
            },
        )
    )


async def _run_window(
    spec: LoadSpec, conns: Sequence[Publisher], phase: Phase, start: float
) -> None:
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    phase.deadline = start + spec.seconds
    phase.sending = True
    for conn in conns:
        conn.start()
    await asyncio.sleep(max(0.0, phase.deadline - time.monotonic()))
    phase.sending = False
    for conn in conns:
        conn.stop()
    drains = [conn.drained for conn in conns]
    if drains:
        await asyncio.wait(drains, timeout=spec.drain_timeout)


async def _connect_all(spec: LoadSpec, tally: Tally, phase: Phase) -> tuple[list[Publisher], int]:
    gate = asyncio.Semaphore(max(4, spec.connect_concurrency // spec.processes))
    ssl_ctx = spec.target.ssl_context()
    props = dict(spec.properties)

    async def one(device_id: str) -> Publisher | None:
        async with gate:
            try:
                return await asyncio.wait_for(
                    _connect_one(spec, device_id, ssl_ctx, tally, phase, props),
                    spec.connect_timeout,
                )
            except (OSError, TimeoutError, ConnectionError) as exc:
                tally.error(f"{device_id}: connect failed: {exc!r}")
                return None

    found = await asyncio.gather(*(one(d) for d in spec.device_ids))
    conns = [c for c in found if c is not None]
    return conns, len(found) - len(conns)


async def _connect_one(
    spec: LoadSpec,
    device_id: str,
    ssl_ctx: ssl.SSLContext | None,
    tally: Tally,
    phase: Phase,
    props: dict[str, str],
) -> Publisher:
    loop = asyncio.get_running_loop()
    target = spec.target
    connect = connect_packet(target.dialect, device_id)

    def factory() -> Publisher:
        if spec.record_ids:
            return RecordingPublisher(device_id, connect, spec.window, tally, phase, props)
        topic = message_topic(device_id, props)
        return FastPublisher(device_id, connect, spec.window, tally, phase, topic)

    _, conn = await loop.create_connection(
        factory,
        target.host,
        target.port,
        ssl=ssl_ctx,
        server_hostname=target.host if ssl_ctx is not None else None,
    )
    code = await conn.connack
    if code != 0:
        conn.disconnect()
        raise ConnectionError(f"CONNACK return code {code}")
    return conn
