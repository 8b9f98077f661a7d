"""Record batches in JetStream messages: framing and offset arithmetic (property tests),
and what the stream holds for one turn of appends from several tenants and devices."""

from __future__ import annotations

import asyncio
import itertools

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aislehub.ingest import batches
from aislehub.ingest.log import IngestLogFailed
from aislehub.ingest.nats_log import NatsLog
from aislehub.ingest.subjects import device_subject
from tests.services import require_nats, unique_name

records = st.lists(st.binary(max_size=300), min_size=1, max_size=50)


@given(records)
def test_a_batch_gives_back_its_records(items: list[bytes]) -> None:
    assert batches.unframe(batches.frame(items)) == items


@given(st.binary(max_size=64).filter(lambda b: not b.startswith(b"\xb1")))
def test_a_payload_without_the_batch_mark_is_one_record(payload: bytes) -> None:
    assert batches.unframe(payload) == [payload]


@given(records, st.data())
def test_a_damaged_batch_is_refused_never_misread(items: list[bytes], data: st.DataObject) -> None:
    framed = batches.frame(items)
    cut = data.draw(st.integers(1, len(framed) - 1))
    with pytest.raises(batches.BatchError):
        batches.unframe(framed[:cut])
    with pytest.raises(batches.BatchError):
        batches.unframe(framed + b"x")


def test_batch_sizes_are_bounded() -> None:
    with pytest.raises(ValueError, match="1 to 65535"):
        batches.frame([])
    with pytest.raises(batches.BatchError, match="claims 0"):
        batches.unframe(b"\xb1\x00\x00\x00\x00")


@given(st.lists(st.integers(1, 300), min_size=1, max_size=20), st.integers(1, 10_000))
def test_offsets_increase_and_say_where_to_resume(sizes: list[int], first: int) -> None:
    """Across consecutive messages: offsets increase, and resuming after any of them starts
    at the message holding the next record."""
    held = [
        (seq, off) for seq, size in enumerate(sizes, first) for off in batches.offsets(seq, size)
    ]
    offs = [off for _, off in held]
    assert all(a < b for a, b in itertools.pairwise(offs))
    for (_, after), (next_seq, _) in itertools.pairwise(held):
        assert batches.message_of(after) == next_seq
    assert batches.message_of(batches.last_offset(first - 1)) == first
    assert batches.message_of(-1) == 1
    assert batches.last_offset(first + len(sizes) - 1) == offs[-1]


def test_one_turn_is_one_message_per_tenant_on_the_devices_subject() -> None:
    url, stream = require_nats(), unique_name("batches").upper()

    async def body() -> None:
        log = NatsLog(url, stream, f"test.{stream}")
        await log.start()
        try:
            sent = [
                ("taverns", "cooler-1", b"a"),
                ("taverns", "cooler-2", b"b"),
                ("shops", "shelf.7", b"c"),
                ("taverns", "cooler-1", b"d"),
                ("shops", "shelf.7", b"e"),
            ]
            at = await asyncio.gather(
                *(log.append(r, device_subject(app, dev)) for app, dev, r in sent)
            )
            # Two messages, each tenant's records in append order within its own.
            assert [o >> 16 for o in at] == [1, 1, 2, 1, 2]
            assert at[0] < at[1] < at[3] and at[2] < at[4]
            got = await log.read(-1, 10, timeout=0)
            assert got == sorted(zip(at, [r for _, _, r in sent], strict=True))
            assert log.backlog(-1) == 5 and log.backlog(at[4]) == 0
            assert 0 < log.backlog(at[1]) <= 5  # an estimate inside a message

            nc = await nats.connect(url)
            try:
                js = nc.jetstream()
                first = await js.get_msg(stream, 1)
                second = await js.get_msg(stream, 2)
            finally:
                await nc.close()
            assert first.subject == f"test.{stream}.taverns.~many"  # two devices
            assert second.subject == f"test.{stream}.shops.shelf~2E7"  # one device
            alone = await log.append(b"f", device_subject("shops", "shelf.7"))
            assert alone >> 16 == 3
        finally:
            await log.delete_stream()
            await log.close()

    asyncio.run(body())


def test_a_batch_the_server_refuses_fails_its_turn_and_nothing_hangs() -> None:
    """A record over the server's max_payload cannot be published: every append of that
    turn fails with IngestLogFailed (never acknowledged, never left waiting), and appends
    go on afterwards."""
    url, stream = require_nats(), unique_name("batches").upper()

    async def body() -> None:
        log = NatsLog(url, stream, f"test.{stream}")
        await log.start()
        try:
            too_big = b"x" * (log._client.max_payload + 1)
            turn = [
                log.append(too_big, device_subject("shops", "shelf-1")),  # sent first, refused
                log.append(b"small", device_subject("taverns", "cooler-1")),  # not sent yet
            ]
            results = await asyncio.wait_for(asyncio.gather(*turn, return_exceptions=True), 5)
            assert all(isinstance(r, IngestLogFailed) for r in results), results
            assert "maximum payload" in str(results[0])
            assert await asyncio.wait_for(log.append(b"after"), 5) >= 0
        finally:
            await log.delete_stream()
            await log.close()

    asyncio.run(body())
