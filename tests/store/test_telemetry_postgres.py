"""PostgreSQL telemetry store specifics: partitions, retention, the one-minute rollup,
what PostgreSQL cannot hold as sent, the payload reader past orjson's depth, and one
writer beside readers. Each test gets its own database (``tests/services.py``)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aislehub.store.postgres_telemetry import _DEEP, _INVALID, _OTHER, PostgresTelemetryStore
from aislehub.store.postgres_telemetry import _deep_kind as deep_kind
from aislehub.store.telemetry import BatchCounts
from tests.services import postgres_database
from tests.store.test_telemetry_conformance import Feed
from tests.store.test_typed_ingest import COOLER, TEMPLATE, catalog

NOW = datetime.now(UTC).replace(second=30, microsecond=0)


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as database:
        yield database


@pytest.fixture
def store(url: str) -> Iterator[PostgresTelemetryStore]:
    opened = PostgresTelemetryStore(url)
    yield opened
    opened.close()


def test_partitions_ahead_and_on_demand(store: PostgresTelemetryStore) -> None:
    today = datetime.now(UTC).date()
    assert store.partition_days() == [today + timedelta(days=i) for i in range(3)]
    old = NOW - timedelta(days=400)
    store.write_batch("store", *Feed().batch(("d1", old, {"x": 1}), ("d1", NOW, {"x": 2})))
    assert old.date() in store.partition_days()
    assert store.latest("app", "d1", "x") == (2.0, NOW)
    _, rows = store.query(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry_num'::regclass", []
    )
    assert rows == [(4,)]


def test_retention_drops_whole_days_everywhere(url: str, store: PostgresTelemetryStore) -> None:
    feed = Feed()
    days = [NOW - timedelta(days=k) for k in (10, 3, 0)]
    store.write_batch("store", *feed.batch(*[("d1", ts, {"x": 1, "s": "a"}) for ts in days]))
    assert store.count_messages("app") == 3
    dropped = store.drop_partitions_before(days[1].date())  # midnight: day -3 stays
    assert dropped == [days[0].date()]
    assert store.count_messages("app") == 2
    _, rows = store.query(
        "SELECT count(*) FROM telemetry_1m UNION ALL SELECT count(*) FROM telemetry_val", []
    )
    assert rows == [(2,), (2,)]
    assert store.drop_partitions_before(days[1]) == []  # day -3 is not over at that instant
    # Another process still believing the day exists writes into it: recreated.
    other = PostgresTelemetryStore(url)
    try:
        store.drop_partitions_before(days[1] + timedelta(days=1))
        feed.offset = store.committed_offset("store")
        assert other.write_batch("store", *feed.batch(("d1", days[1], {"x": 5}))) is not None
        assert days[1].date() in other.partition_days()
    finally:
        other.close()


def test_rollup_per_minute_and_never_twice(store: PostgresTelemetryStore) -> None:
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE))
    feed = Feed()
    minute = NOW.replace(second=0)
    first = feed.batch(
        ("c1", minute + timedelta(seconds=1), {"temp": 4.0, "doorOpen": True}),
        ("c1", minute + timedelta(seconds=2), {"temp": 6.0, "mode": "auto"}),
        ("c2", minute + timedelta(seconds=3), {"temp": 1.0}),  # no template
    )
    assert store.write_batch("store", *first) is not None
    second = feed.batch(
        ("c1", minute + timedelta(seconds=50), {"temp": 2.0}),
        ("c1", minute + timedelta(seconds=61), {"temp": 3.0}),  # the next minute
        ("c1", minute + timedelta(seconds=62), {"temp": "warm"}),  # mistyped: not rolled up
        ("c1", minute, {"power": 100}),
    )
    store.write_batch("store", *second)
    assert store.write_batch("store", *second) is None  # a replay changes nothing
    _, rows = store.query(
        "SELECT device_id, component, name, minute, count, sum, min, max FROM telemetry_1m "
        "ORDER BY device_id, name, minute",
        [],
    )
    assert rows == [
        ("c1", None, "temp", minute, 3, 12.0, 2.0, 6.0),
        ("c1", None, "temp", minute + timedelta(minutes=1), 1, 3.0, 3.0, 3.0),
        ("c2", None, "temp", minute, 1, 1.0, 1.0, 1.0),
    ]
    # The hourly rollup is the minutes' folded per hour (NOW's minute may end an hour).
    expected: dict[tuple[str, str, datetime], tuple[int, float, float, float]] = {}
    for device, _, name, start, count, total, low, high in rows:
        key = (device, name, start.replace(minute=0))
        c, s, lo, hi = expected.get(key, (0, 0.0, math.inf, -math.inf))
        expected[key] = (c + count, s + total, min(lo, low), max(hi, high))
    _, hours = store.query(
        "SELECT device_id, name, hour, count, sum, min, max FROM telemetry_1h "
        "ORDER BY device_id, name, hour",
        [],
    )
    assert hours == [(*key, *value) for key, value in sorted(expected.items())]


def test_a_rollup_table_added_later_gets_the_known_days(url: str) -> None:
    """A database whose day partitions predate ``telemetry_1h`` gets its partitions for
    those days when a store opens it, and batches of those days are written."""
    first = PostgresTelemetryStore(url)
    day = (NOW - timedelta(days=3)).date()
    first.create_partitions(day, day)
    first.close()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP TABLE telemetry_1h")  # as made by a store before the hourly rollup
        conn.execute(
            "CREATE TABLE telemetry_1h (app_id text NOT NULL, device_id text NOT NULL, "
            "module_id text, component text, name text NOT NULL, hour timestamptz NOT NULL, "
            "count bigint NOT NULL, sum float8 NOT NULL, min float8 NOT NULL, "
            "max float8 NOT NULL) PARTITION BY RANGE (hour)"
        )
    store = PostgresTelemetryStore(url)
    try:
        ts = NOW - timedelta(days=3)
        assert store.write_batch("store", *Feed().batch(("d1", ts, {"x": 4}))) is not None
        _, rows = store.query("SELECT hour, count, max FROM telemetry_1h", [])
        assert rows == [(ts.replace(minute=0, second=0), 1, 4.0)]
    finally:
        store.close()


def test_components_and_modules_roll_up_apart(store: PostgresTelemetryStore) -> None:
    feed = Feed()
    for _ in range(2):
        store.write_batch("store", *feed.batch(("d1", NOW, {"v": 1})))
        store.write_batch("store", *feed.batch(("d1", NOW, {"v": 2}), props={"$.sub": "c"}))
        store.write_batch("store", *feed.batch(("d1", NOW, {"v": 3}), module="m"))
    _, rows = store.query(
        "SELECT component, module_id, count, sum FROM telemetry_1m ORDER BY sum", []
    )
    assert rows == [(None, None, 2, 2.0), ("c", None, 2, 4.0), (None, "m", 2, 6.0)]


def test_what_postgres_cannot_hold_as_sent(store: PostgresTelemetryStore) -> None:
    payload = b'{"s": "a\\u0000b", "tiny": 1e-400, "n": 2}'
    batch, last = Feed().batch(("d1", NOW, payload), props={"$.mid": "m\x00id"})
    counts = store.write_batch("store", batch, last)
    assert counts == BatchCounts(1, number_rows=2, value_rows=1)
    assert store.latest("app", "d1", "s") == ("a\ufffdb", NOW)
    assert store.latest("app", "d1", "tiny") == (0.0, NOW)
    assert store.message_ids("app") == ["m\ufffdid"]
    _, rows = store.query("SELECT raw, valid_json FROM messages", [])
    assert rows == [(payload, True)]  # the exact bytes, beside the fields


def test_nothing_kept_raw_for_ordinary_objects(store: PostgresTelemetryStore) -> None:
    store.write_batch("store", *Feed().batch(("d1", NOW, {"a": 1}), ("d1", NOW, b"[1]")))
    _, rows = store.query("SELECT raw FROM messages ORDER BY log_offset", [])
    assert rows == [(None,), (b"[1]",)]


# -- the reader for payloads nested deeper than orjson reads ---------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _dumps(value: object) -> bytes:  # any int, Infinity, \u escapes and surrogate pairs
    return json.dumps(value).encode()


_SPACE = st.sampled_from([b"", b" ", b"\n\t", b"\r\n "])
_TEXTS = (
    _JSON.map(_dumps)
    | st.tuples(_SPACE, _JSON.map(_dumps), _SPACE).map(b"".join)
    | st.binary(max_size=40)
    | st.text(alphabet='{}[]:,"\\ u0123456789dDabeE.-+truefalsnNI\x00', max_size=30).map(str.encode)
)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_deep_reader_agrees_with_orjson(payload: bytes) -> None:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        want = _INVALID
    else:
        want = _DEEP if type(doc) is dict else _OTHER
    assert deep_kind(payload) == want


def test_deep_reader_reads_any_depth() -> None:
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert deep_kind(deep) == _DEEP
    assert deep_kind(deep[:-2] + b"}") == _INVALID
    assert deep_kind(b"[" * 3000 + b"1e999" + b"]" * 3000) == _INVALID


# -- one writer, many readers ----------------------------------------------------------


def test_readers_see_whole_batches_while_the_writer_writes(
    store: PostgresTelemetryStore,
) -> None:
    feed = Feed()
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def read() -> None:
        try:
            while not stop.is_set():
                count = store.count_messages("app")
                assert count % 100 == 0  # never half a batch
                seen.append(count)
                store.latest("app", "d1", "v")
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(6)]  # more than the pool
    for thread in readers:
        thread.start()
    for k in range(10):
        messages = [("d1", NOW, {"v": k * 100 + i}) for i in range(100)]
        store.write_batch("store", *feed.batch(*messages))
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert store.count_messages("app") == 1000 and seen


def test_closed_store_refuses(url: str) -> None:
    opened = PostgresTelemetryStore(url)
    opened.close()
    with pytest.raises(Exception, match="closed"):
        opened.latest("app", "d1", "v")


def test_partition_days_parse(store: PostgresTelemetryStore) -> None:
    store.create_partitions(date(2030, 1, 30), date(2030, 2, 1))
    assert {date(2030, 1, 30), date(2030, 1, 31), date(2030, 2, 1)} <= set(store.partition_days())
