"""The scale-out ingest log: one NATS JetStream stream.

Records travel in batches (:mod:`aislehub.ingest.batches`): what was appended during one
turn of the event loop is published as one message per tenant, and a record's offset is
its message's stream sequence and its place in it (``sequence << 16 | index``), so offsets
increase in append order within a tenant and are shared by every process appending to
the stream, but are not dense (:meth:`NatsLog.backlog` estimates lag).

Appends are pipelined: ``append`` queues the record and returns a future; one publisher
task writes the turn's batches to the connection back to back, each with its own reply
subject under one wildcard inbox, and a batch's futures resolve when JetStream's PubAck
for its message comes back. Nothing waits for one ack before sending the next message.

Reads go through one pull consumer per reader name, positioned at the message holding the
first record after the requested offset. A named reader (``read(..., consumer="store")``)
reads through the durable consumer of that name with AckAll: ``acknowledge`` acks the
newest message all of whose records are committed, so ``nats consumer info`` shows each
reader's position and retention keeps what a reader has not acknowledged
(``truncate_before`` never purges past any durable consumer's ack floor). The reader's
own committed offset stays authoritative: when a read does not continue the previous one
(a restart, or a retry) the durable consumer is kept if its ack floor is the message
before and nothing beyond was delivered, else it is re-created starting there. Anonymous
reads use an ephemeral consumer without acks, re-created the same way. A read first asks
for what is stored now (``no_wait``), and only when there is nothing waits server-side
for the first new record (``expires`` = the timeout). The rest of a message that a read's
``max_records`` cut off is kept for the next read that continues it.

Durability is JetStream's: a PubAck means the stream stored the message. With the server's
defaults that is *not* an fsync (``sync_interval`` is two minutes), so production runs
``sync_interval: always`` and three replicas (docs/operations-scale-out.md, DESIGN §7).

Resource handling: ``start`` connects, creates the stream if it is missing and subscribes
the ack inbox; ``close`` waits (up to ``ack_timeout``) for the acks in flight, deletes the
anonymous read consumers (durable ones stay) and closes the connection.

Error handling: if the connection drops, every append in flight fails with
:class:`IngestLogFailed` (the message may or may not be stored; the device re-sends and
the store writer drops the duplicate by message id) and appends are refused until the
client has reconnected. An ack that does not come within ``ack_timeout`` fails the same
way. Nothing is ever acknowledged without its PubAck.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from aislehub.ingest import batches
from aislehub.ingest.log import IngestLogClosed, IngestLogError, IngestLogFailed, OffsetTruncated
from aislehub.ingest.subjects import encode_token

__all__ = ["NatsLog", "durable_name"]

logger = logging.getLogger(__name__)

_STATUS = "Status"
_END_OF_PULL = {"404", "408", "409"}  # no messages, request expired, consumer gone
# A pull request expiring server-side answers 408; wait this much longer for that answer.
_PULL_GRACE = 1.0
_DURABLE_ACK_WAIT = 24 * 3600.0  # seconds


class NatsLog:
    """IngestLog over the JetStream stream ``stream`` on ``subject_prefix`` (and below it)."""

    def __init__(
        self,
        url: str,
        stream: str,
        subject_prefix: str,
        *,
        replicas: int = 1,
        ack_timeout: float = 5.0,
        max_bytes: int = -1,
        readers: Sequence[str] = (),
    ) -> None:
        self.url = url
        # Named readers to hold records for from the start, even before they first read
        # (in another process, say): ``start`` creates their missing durable consumers.
        self.declared_readers = tuple(readers)
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.replicas = replicas
        self.ack_timeout = ack_timeout
        self.max_bytes = max_bytes
        self._nc: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox = ""
        self._tokens = itertools.count()
        self._queue: list[tuple[str | None, bytes, asyncio.Future[int]]] = []
        self._queued_bytes = 0
        # Published, not yet acknowledged: reply token -> (the batch's futures, size, sent
        # at). Acks come back in publish order, so the first entry is always the oldest.
        self._in_flight: OrderedDict[str, tuple[list[asyncio.Future[int]], int, float]] = (
            OrderedDict()
        )
        self._max_batch_bytes = 1 << 20
        # Records and messages published or read here: their mean sizes backlog estimates and
        # the readers' pull requests.
        self._counted = [0, 0]
        self._in_flight_bytes = 0
        self._wake = asyncio.Event()
        self._durable = -1
        self._connected = False
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._readers: dict[str | None, _Reader] = {}  # by reader name (None: anonymous)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, create the stream if needed, learn its last sequence, start publishing."""
        self._loop = asyncio.get_running_loop()
        self._nc = await nats.connect(
            self.url,
            name=f"aislehub-ingest:{self.stream}",
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
        )
        self._connected = True
        info = await self._ensure_stream()
        self._durable = batches.last_offset(info.state.last_seq)
        # The server's limit on a message, less room for the PUB line and headers.
        self._max_batch_bytes = max(self._nc.max_payload - 4096, 4096)
        await self._declare_readers(max(info.state.first_seq, 1))
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name=f"nats-log-publish:{self.stream}"),
            asyncio.create_task(self._watchdog(), name=f"nats-log-acks:{self.stream}"),
        ]

    async def _ensure_stream(self) -> api.StreamInfo:
        js = self._client.jetstream()
        try:
            return await js.stream_info(self.stream)
        except NotFoundError:
            config = api.StreamConfig(
                name=self.stream,
                subjects=[self.subject_prefix, f"{self.subject_prefix}.>"],
                storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.LIMITS,
                discard=api.DiscardPolicy.OLD,
                num_replicas=self.replicas,
                max_bytes=self.max_bytes,
            )
            return await js.add_stream(config)

    async def _declare_readers(self, first_seq: int) -> None:
        """A durable consumer at the oldest record for each declared reader that has none:
        retention keeps everything it has not acknowledged, from before its first read."""
        js = self._client.jetstream()
        for name in self.declared_readers:
            try:
                await js.consumer_info(self.stream, durable_name(name))
            except NotFoundError:
                await js.add_consumer(self.stream, _durable_config(name, first_seq))

    async def close(self) -> None:
        """Send what is queued, wait for its acks (bounded), release the connection."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + self.ack_timeout
        while (self._queue or self._in_flight) and self._connected:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        self._fail_all(IngestLogFailed("ingest log closed before the append was acknowledged"))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for reader in self._readers.values():
            await reader.drop()
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError):
                await self._nc.close()

    async def delete_stream(self) -> None:
        """Delete the whole stream (tests and tear-down; not part of IngestLog)."""
        await self._client.jetstream().delete_stream(self.stream)

    @property
    def _client(self) -> Client:
        if self._nc is None:
            raise IngestLogClosed("NatsLog used before start()")
        return self._nc

    # -- hot path --------------------------------------------------------------------

    @property
    def durable_offset(self) -> int:
        return self._durable

    def backlog(self, after: int) -> int:
        """An estimate: the messages after ``after`` times the mean records per message."""
        messages = batches.message_of(self._durable) - batches.message_of(after)
        return max(0, round(messages * self._records_per_message))

    @property
    def _records_per_message(self) -> float:
        records, messages = self._counted
        return records / messages if messages else 1.0

    def _count_message(self, records: int) -> None:
        self._counted[0] += records
        self._counted[1] += 1

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet acknowledged: the gateway pauses reading above a limit."""
        return self._queued_bytes + self._in_flight_bytes

    def append(self, record: bytes, subject: str | None = None) -> asyncio.Future[int]:
        """Queue ``record`` on ``<prefix>`` (or ``<prefix>.<subject>``); the future resolves
        to its offset once JetStream acknowledged it."""
        if self._closing or self._loop is None:
            raise IngestLogClosed("append before start() or after close()")
        if not self._connected:
            raise IngestLogFailed(f"not connected to NATS at {self.url}")
        future: asyncio.Future[int] = self._loop.create_future()
        self._queue.append((subject, record, future))
        self._queued_bytes += len(record)
        self._wake.set()
        return future

    async def _publish_loop(self) -> None:
        nc = self._client
        while True:
            await self._wake.wait()
            self._wake.clear()
            queue, self._queue, self._queued_bytes = self._queue, [], 0
            # A cancelled future still publishes: once appended, a record is in the log
            # (as in the local log), and skipping it would renumber the ones after it.
            turn = list(_batches(queue, self._max_batch_bytes))
            for sent, (subject, records, futures, size) in enumerate(turn):
                token = str(next(self._tokens))
                self._count_message(len(records))
                self._in_flight[token] = (futures, size, time.monotonic())
                self._in_flight_bytes += size
                target = (
                    self.subject_prefix if subject is None else f"{self.subject_prefix}.{subject}"
                )
                try:
                    await nc.publish(target, batches.frame(records), reply=f"{self._inbox}.{token}")
                except (NatsError, OSError) as exc:
                    error = IngestLogFailed(f"publish to NATS failed: {exc} ({type(exc).__name__})")
                    self._fail_all(error)  # this batch and those in flight
                    _fail([f for batch in turn[sent + 1 :] for f in batch[2]], error)
                    break

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._in_flight.pop(msg.subject[len(self._inbox) + 1 :], None)
        if entry is None:
            return  # already failed (disconnect, timeout) or from a previous inbox
        futures, size, _ = entry
        self._in_flight_bytes -= size
        status = (msg.headers or {}).get(_STATUS)
        reply: dict[str, Any] = {} if status else orjson.loads(msg.data)
        if status or "error" in reply:
            why = f"status {status}" if status else reply["error"]
            _fail(futures, IngestLogFailed(f"JetStream refused the append: {why}"))
            return
        offsets = batches.offsets(int(reply["seq"]), len(futures))
        self._durable = max(self._durable, offsets[-1])
        for future, offset in zip(futures, offsets, strict=True):
            if not future.done():
                future.set_result(offset)

    async def _watchdog(self) -> None:
        """Fail appends whose ack is overdue (an ack lost to a broken connection)."""
        while True:
            await asyncio.sleep(min(self.ack_timeout / 4, 1.0))
            now = time.monotonic()
            while self._in_flight:
                token, (futures, size, sent) = next(iter(self._in_flight.items()))
                if now - sent < self.ack_timeout:
                    break
                del self._in_flight[token]
                self._in_flight_bytes -= size
                _fail(futures, IngestLogFailed("no JetStream ack in time"))

    async def _on_disconnect(self) -> None:
        self._connected = False
        self._fail_all(IngestLogFailed(f"lost the connection to NATS at {self.url}"))

    async def _on_reconnect(self) -> None:
        self._connected = True

    def _fail_all(self, error: IngestLogFailed) -> None:
        _fail([f for _, _, f in self._queue], error)
        for futures, _, _ in self._in_flight.values():
            _fail(futures, error)
        self._queue, self._queued_bytes = [], 0
        self._in_flight.clear()
        self._in_flight_bytes = 0

    # -- readers and retention -------------------------------------------------------

    async def read(
        self,
        after: int,
        max_records: int,
        timeout: float,  # noqa: ASYNC109 - see IngestLog.read
        *,
        consumer: str | None = None,
    ) -> list[tuple[int, bytes]]:
        """Stored records with offset > ``after``, oldest first; a named reader reads
        through the durable consumer ``durable_name(consumer)``."""
        reader = self._readers.get(consumer)
        if reader is None:
            reader = self._readers[consumer] = _Reader(self, consumer)
        records = await reader.read(after, max_records, timeout)
        if records:
            # A record delivered by the stream is stored, even if another process sent it.
            self._durable = max(self._durable, records[-1][0])
        return records

    async def acknowledge(self, consumer: str, offset: int) -> None:
        """Ack (AckAll, waiting for the server's confirmation) the last record read by
        ``consumer`` at or below ``offset``; a failure is logged, the next ack covers it."""
        reader = self._readers.get(consumer)
        reply = None if reader is None else reader.ack_reply(offset)
        if reply is None:
            return
        try:
            await self._client.request(reply, b"+ACK", timeout=self.ack_timeout)
        except (NatsError, OSError) as exc:
            logger.warning(
                "ingest log reader %s: ack up to offset %d lost: %r", consumer, offset, exc
            )

    async def acknowledged(self, consumer: str) -> int | None:
        """The durable consumer's ack floor as an offset (its start before any ack)."""
        js = self._client.jetstream()
        try:
            info = await js.consumer_info(self.stream, durable_name(consumer))
        except NotFoundError:
            return None
        return _acknowledged(info)

    async def readers(self) -> dict[str, int]:
        """Every durable consumer on the stream (any process's) and its acknowledged
        offset, by durable name."""
        infos = await self._client.jetstream().consumers_info(self.stream)
        return {
            info.config.durable_name: _acknowledged(info)
            for info in infos
            if info.config.durable_name
        }

    async def truncate_before(self, offset: int) -> None:
        """Purge the messages wholly below ``offset`` (JetStream purge, keeping the message
        that holds ``offset`` and those after), but none that a durable consumer of the
        stream has not acknowledged."""
        js = self._client.jetstream()
        last = (await js.stream_info(self.stream)).state.last_seq
        acked = await self.readers()
        offset = min([offset, *(a + 1 for a in acked.values())])
        # Purging past the last sequence would move the stream's next sequence forward:
        # never go beyond "everything stored so far".
        keep_from = min(batches.message_of(offset - 1), last + 1)
        if keep_from > 1:
            await js.purge_stream(self.stream, seq=keep_from)


def durable_name(consumer: str) -> str:
    """The JetStream durable consumer name of log reader ``consumer`` (one subject token,
    escaped as in :mod:`aislehub.ingest.subjects`: ``rules@cell-2`` → ``rules~40cell-2``)."""
    return encode_token(consumer)


def _durable_config(name: str, seq: int) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=durable_name(name),
        description=f"aislehub ingest log reader {name}",
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=seq,
        ack_policy=api.AckPolicy.ALL,
        # The reader acks once its batch is committed, which may take long under load or
        # while the store is down: never redeliver meanwhile (the reader's offset decides
        # what is read again), and never stall on unacknowledged deliveries.
        ack_wait=_DURABLE_ACK_WAIT,
        max_ack_pending=-1,
    )


def _acknowledged(info: api.ConsumerInfo) -> int:
    """Offset acknowledged by a durable consumer: the end of its ack floor's message once it
    acked anything, else the end of the message before its start (it needs everything from
    there)."""
    return batches.last_offset(_floor(info))


def _floor(info: api.ConsumerInfo) -> int:
    """The stream sequence a durable consumer has acknowledged up to (inclusive)."""
    floor = info.ack_floor
    if floor is not None and floor.consumer_seq:
        return floor.stream_seq or 0
    return (info.config.opt_start_seq or 1) - 1


class _Reader:
    """One pull consumer and the inbox its deliveries arrive on.

    Anonymous (``durable`` None): an ephemeral consumer without acks, deleted when the
    reader is repositioned or closed. Named: the durable consumer ``durable_name(name)``
    with AckAll, kept across restarts; positioning it at a message keeps it when its ack
    floor is the message before and nothing beyond was delivered, else re-creates it
    starting there (the reader's own offset is authoritative).

    A read returns at most ``max_records``; the rest of the last message delivered is kept
    for the next read that continues this one. Deliveries are collected by the
    subscription callback (no per-message wait), and one pull request is outstanding at a
    time, so a status message always ends the current one.
    """

    def __init__(self, log: NatsLog, name: str | None) -> None:
        self._log = log
        self.name = name
        self._durable = None if name is None else durable_name(name)
        self._consumer: str | None = None
        self._sub: Subscription | None = None
        self._next_seq = -1  # the stream sequence the consumer delivers next
        self._last = -2  # the offset the previous read ended at (-2: none)
        self._carry: list[tuple[int, bytes]] = []  # read from the stream, not yet returned
        self._lock = asyncio.Lock()
        self._got: list[tuple[int, bytes, str]] = []  # (stream sequence, payload, reply)
        self._want = 0
        self._delivered = 0
        # Named readers: the messages read and not yet acknowledged, oldest first, as (the
        # offset ending the message, its ack reply subject).
        self._acks: deque[tuple[int, str]] = deque()
        self._done = asyncio.Event()

    async def read(self, after: int, max_records: int, timeout: float) -> list[tuple[int, bytes]]:  # noqa: ASYNC109
        if max_records < 1:
            return []
        async with self._lock:
            clean = False
            try:
                records = await self._read(after, max_records, timeout)
                clean = True
                return records
            finally:
                if not clean:  # cancelled or failed mid-pull: deliveries may be in flight
                    await self.drop()

    async def _read(self, after: int, max_records: int, timeout: float) -> list[tuple[int, bytes]]:  # noqa: ASYNC109
        if self._consumer is None or after != self._last:
            await self._position(after)
        records = self._carry + await self._fill(max_records - len(self._carry))
        if not records and timeout > 0:
            records = await self._pull(1, timeout)
            if records:
                records += await self._fill(max_records - len(records))
        self._carry = records[max_records:]
        records = records[:max_records]
        if records:
            self._last = records[-1][0]
        return records

    def ack_reply(self, offset: int) -> str | None:
        """The reply subject acknowledging the newest message read whose records all are at
        or below ``offset`` (AckAll: it covers the messages before it), forgetting them."""
        reply = None
        while self._acks and self._acks[0][0] <= offset:
            reply = self._acks.popleft()[1]
        return reply

    async def _position(self, after: int) -> None:
        """Point the consumer at the message holding the first record after ``after``."""
        await self.drop()
        seq = batches.message_of(after)
        log = self._log
        js = log._client.jetstream()
        state = (await js.stream_info(log.stream)).state
        if seq < state.first_seq and state.first_seq > 1:
            raise OffsetTruncated(
                f"offset {after + 1} is below the oldest kept, "
                f"{batches.last_offset(state.first_seq - 1) + 1}"
            )
        if self._durable is None:
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=seq,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=60.0,
                mem_storage=True,
            )
            self._consumer = (await js.add_consumer(log.stream, config)).name
        else:
            await self._position_durable(js, seq)
        self._sub = await log._client.subscribe(log._client.new_inbox(), cb=self._on_msg)
        self._next_seq = seq
        self._last = after

    async def _position_durable(self, js: JetStreamContext, seq: int) -> None:
        assert self._durable is not None
        log = self._log
        try:
            info: api.ConsumerInfo | None = await js.consumer_info(log.stream, self._durable)
        except NotFoundError:
            info = None
        if info is not None and _resumes_at(info, seq):
            self._consumer = self._durable
            return
        if info is not None:
            if _floor(info) != seq - 1:
                logger.info(
                    "ingest log reader %s: acknowledged up to message %d, resuming from "
                    "message %d (its committed offset)",
                    self.name,
                    _floor(info),
                    seq,
                )
            await js.delete_consumer(log.stream, self._durable)
        assert self.name is not None
        await js.add_consumer(log.stream, _durable_config(self.name, seq))
        self._consumer = self._durable

    async def _fill(self, wanted: int) -> list[tuple[int, bytes]]:
        """What is stored now, up to about ``wanted`` records: pulls sized by the mean
        records per message, again while a pull was answered in full and more are wanted."""
        out: list[tuple[int, bytes]] = []
        while len(out) < wanted:
            out += await self._pull(wanted - len(out), None)
            if self._delivered < self._want:  # the stream had no more
                break
        return out

    async def _pull(self, records: int, wait: float | None) -> list[tuple[int, bytes]]:
        """One pull request for about ``records`` records: ``wait`` None asks for what is
        stored now, else waits for it."""
        assert self._sub is not None and self._consumer is not None
        batch = max(1, min(records, round(records / self._log._records_per_message)))
        request: dict[str, Any] = {"batch": batch}
        if wait is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(wait * 1e9)
        self._got, self._want, self._delivered = [], batch, 0
        self._done.clear()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._log.stream}.{self._consumer}"
        await self._log._client.publish(subject, orjson.dumps(request), reply=self._sub.subject)
        try:
            await asyncio.wait_for(self._done.wait(), (wait or 0) + _PULL_GRACE + 5.0)
        except TimeoutError as exc:
            raise IngestLogError("JetStream did not answer a pull request") from exc
        return self._unpack(self._got)

    def _unpack(self, got: list[tuple[int, bytes, str]]) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for seq, payload, reply in got:
            if seq != self._next_seq:
                what = "purged while reading" if seq > self._next_seq else "delivered twice"
                raise OffsetTruncated(f"message {self._next_seq} of the stream was {what}")
            self._next_seq = seq + 1
            try:
                records = batches.unframe(payload)
            except batches.BatchError as exc:
                raise IngestLogError(f"message {seq} of the stream: {exc}") from exc
            offsets = batches.offsets(seq, len(records))
            if offsets[0] > self._last:
                out += zip(offsets, records, strict=True)
            else:  # a message resumed inside: its records up to the reader's offset were read
                out += ((o, r) for o, r in zip(offsets, records, strict=True) if o > self._last)
            self._log._count_message(len(records))
            if self._durable is not None:
                self._acks.append((batches.last_offset(seq), reply))
        return out

    async def _on_msg(self, msg: Msg) -> None:
        status = (msg.headers or {}).get(_STATUS)
        if status is None:
            self._delivered += 1
            seq, redelivered = _delivery(msg.reply)
            if not redelivered:  # a redelivery repeats what was read: the offset decides
                self._got.append((seq, msg.data, msg.reply))
            if self._delivered >= self._want:
                self._done.set()
        elif status in _END_OF_PULL:
            self._done.set()

    async def drop(self) -> None:
        """Forget the consumer: unsubscribe, and delete it if ephemeral (best effort: it
        expires by itself when idle). A durable consumer stays, with its ack floor."""
        sub, consumer, self._sub, self._consumer = self._sub, self._consumer, None, None
        self._next_seq = -1
        self._last = -2
        self._carry = []
        self._acks.clear()
        log = self._log
        with contextlib.suppress(NatsError, OSError, IngestLogError):
            if sub is not None:
                await sub.unsubscribe()
            if (
                consumer is not None
                and self._durable is None
                and log._nc is not None
                and log._nc.is_connected
            ):
                await log._nc.jetstream().delete_consumer(log.stream, consumer)


def _resumes_at(info: api.ConsumerInfo, seq: int) -> bool:
    """Whether durable consumer ``info`` delivers message ``seq`` next with nothing
    outstanding: acknowledged up to ``seq - 1`` and delivered nothing beyond."""
    delivered = info.delivered.stream_seq if info.delivered is not None else None
    return (
        info.config.ack_policy == api.AckPolicy.ALL
        and _floor(info) == seq - 1
        and delivered == seq - 1
        and not info.num_ack_pending
        and not info.num_redelivered
    )


def _delivery(reply: str) -> tuple[int, bool]:
    """The stream sequence in a JetStream delivery's reply subject and whether it is a
    redelivery, in either of its forms:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` or the one
    with ``<domain>.<account hash>`` after ``ACK`` and a random token at the end."""
    tokens = reply.split(".")
    at = 4 if len(tokens) == 9 else 6  # <delivered count>, then <stream sequence>
    return int(tokens[at + 1]), tokens[at] != "1"


def _fail(futures: list[asyncio.Future[int]], error: IngestLogFailed) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


_MANY = "~many"  # the device token of a batch holding several devices' records (never an id)


def _batches(
    queue: list[tuple[str | None, bytes, asyncio.Future[int]]], max_bytes: int
) -> Iterator[tuple[str | None, list[bytes], list[asyncio.Future[int]], int]]:
    """``(subject, records, futures, size)`` per message for one turn's queue: one batch per
    tenant (the subject's first token) in order of first append, split at ``max_bytes``
    or :data:`batches.MAX_RECORDS`. Its subject is the records' own when they share one,
    else ``<tenant>.~many``."""
    groups: dict[str | None, list[tuple[str | None, bytes, asyncio.Future[int]]]] = {}
    for entry in queue:
        subject = entry[0]
        tenant = None if subject is None else subject.partition(".")[0]
        groups.setdefault(tenant, []).append(entry)
    for tenant, entries in groups.items():
        records: list[bytes] = []
        futures: list[asyncio.Future[int]] = []
        subjects: set[str | None] = set()
        size = batches.OVERHEAD
        for subject, record, future in entries:
            grown = size + 4 + len(record)
            if records and (grown > max_bytes or len(records) == batches.MAX_RECORDS):
                yield _subject(tenant, subjects), records, futures, size
                records, futures, subjects, grown = (
                    [],
                    [],
                    set(),
                    batches.OVERHEAD + 4 + len(record),
                )
            records.append(record)
            futures.append(future)
            subjects.add(subject)
            size = grown
        yield _subject(tenant, subjects), records, futures, size


def _subject(tenant: str | None, subjects: set[str | None]) -> str | None:
    if len(subjects) == 1:
        return next(iter(subjects))
    return None if tenant is None else f"{tenant}.{_MANY}"
