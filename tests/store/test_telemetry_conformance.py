"""Conformance suite for :class:`aislehub.store.telemetry.TelemetryStore`.

Every backend must pass these. To add one, register a factory in ``BACKENDS``: a
context manager that gets a fresh temporary directory and yields a function that opens
the store *on the same storage* each time it is called (the restart tests call it
twice), and removes that storage on exit. ``postgres`` gets a fresh database on the
machine's server per test (``tests/services.py``: skipped when the server is down on a
developer's machine, failed in CI), dropped after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore
from aislehub.store.telemetry import BatchCounts, TelemetryBatch, TelemetryStore
from tests.services import postgres_database

Opener = Callable[[], TelemetryStore]


@contextmanager
def _duckdb(directory: Path) -> Iterator[Opener]:
    yield lambda: DuckDBTelemetryStore(directory / "telemetry.duckdb")


@contextmanager
def _postgres(directory: Path) -> Iterator[Opener]:
    with postgres_database() as url:
        yield lambda: PostgresTelemetryStore(url)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
}

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    with BACKENDS[request.param](tmp_path) as make:
        opened: list[TelemetryStore] = []

        def opener() -> TelemetryStore:
            opened.append(make())
            return opened[-1]

        yield opener
        for store in opened:
            store.close()


@pytest.fixture
def store(open_store: Opener) -> TelemetryStore:
    return open_store()


class Feed:
    """Builds batches of messages with consecutive log offsets."""

    def __init__(self) -> None:
        self.offset = -1

    def batch(self, *messages: tuple[str, datetime, Any], **kw: Any) -> tuple[TelemetryBatch, int]:
        entries = []
        for device, ts, body in messages:
            self.offset += 1
            payload = body if isinstance(body, bytes) else orjson.dumps(body)
            props = {"$.mid": f"mid-{self.offset}", **kw.get("props", {})}
            record = TelemetryRecord(
                kw.get("app", "app"), device, kw.get("module"), ms(ts), props, payload
            )
            entries.append((self.offset, record))
        return decode_batch(entries), self.offset


def test_fresh_store_is_empty(store: TelemetryStore) -> None:
    assert store.committed_offset("store") == -1
    assert store.count_messages("app") == 0
    assert store.latest("app", "d1", "temp") is None
    assert store.message_ids("app") == []


def test_write_sets_offset_and_rows_together(store: TelemetryStore) -> None:
    feed = Feed()
    batch, last = feed.batch(("d1", T0, {"temp": 4.5}), ("d2", T0, {"temp": 5.0}))
    assert store.write_batch("store", batch, last) == BatchCounts(2, number_rows=2)
    assert store.committed_offset("store") == 1
    assert store.count_messages("app") == 2
    assert store.count_messages("app", "d1") == 1
    assert store.committed_offset("rules") == -1  # offsets are per consumer


def test_replayed_batch_is_refused(store: TelemetryStore) -> None:
    feed = Feed()
    batch, last = feed.batch(("d1", T0, {"temp": 4.5}))
    store.write_batch("store", batch, last)
    assert store.write_batch("store", batch, last) is None
    assert store.count_messages("app") == 1


def test_empty_batch_still_moves_the_offset(store: TelemetryStore) -> None:
    assert store.write_batch("store", TelemetryBatch.empty(), 41) == BatchCounts()
    assert store.committed_offset("store") == 41


def test_latest_number_and_other_values(store: TelemetryStore) -> None:
    feed = Feed()
    body1 = {"temp": 4.0, "open": False, "loc": {"lat": 1.0, "lon": 2.0}}
    body2 = {"temp": 6.5, "open": True, "state": "ok"}
    store.write_batch(
        "store", *feed.batch(("d1", T0, body1), ("d1", T0 + timedelta(seconds=1), body2))
    )
    assert store.latest("app", "d1", "temp") == (6.5, T0 + timedelta(seconds=1))
    assert store.latest("app", "d1", "open") == (True, T0 + timedelta(seconds=1))
    assert store.latest("app", "d1", "loc") == ({"lat": 1.0, "lon": 2.0}, T0)
    assert store.latest("app", "d1", "missing") is None
    assert store.latest("app", "d2", "temp") is None
    assert store.latest("other-app", "d1", "temp") is None


def test_latest_follows_a_field_that_changed_type(store: TelemetryStore) -> None:
    feed = Feed()
    store.write_batch(
        "store", *feed.batch(("d1", T0, {"x": 1}), ("d1", T0 + timedelta(seconds=2), {"x": "two"}))
    )
    assert store.latest("app", "d1", "x") == ("two", T0 + timedelta(seconds=2))
    store.write_batch("store", *feed.batch(("d1", T0 + timedelta(seconds=3), {"x": 3})))
    assert store.latest("app", "d1", "x") == (3.0, T0 + timedelta(seconds=3))


def test_latest_of_recent_and_of_long_silent_fields(store: TelemetryStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    feed = Feed()
    store.write_batch(
        "store",
        *feed.batch(
            ("d1", now - timedelta(days=30), {"x": 1, "old": "a"}),
            ("d1", now - timedelta(hours=2), {"x": 2}),
            ("d1", now - timedelta(seconds=5), {"x": "three"}),
            ("d2", now - timedelta(days=400), {"x": 4}),
            ("d1", now + timedelta(hours=1), {"future": True}),  # a clock that runs ahead
        ),
    )
    assert store.latest("app", "d1", "x") == ("three", now - timedelta(seconds=5))
    assert store.latest("app", "d1", "old") == ("a", now - timedelta(days=30))
    assert store.latest("app", "d2", "x") == (4.0, now - timedelta(days=400))
    assert store.latest("app", "d1", "future") == (True, now + timedelta(hours=1))


def test_component_and_module_scope(store: TelemetryStore) -> None:
    feed = Feed()
    store.write_batch("store", *feed.batch(("d1", T0, {"temp": 1.0})))
    store.write_batch(
        "store", *feed.batch(("d1", T0, {"temp": 2.0}), props={"$.sub": "thermostat1"})
    )
    store.write_batch("store", *feed.batch(("d1", T0, {"temp": 3.0}), module="edge"))
    assert store.latest("app", "d1", "temp") == (1.0, T0)
    assert store.latest("app", "d1", "temp", component="thermostat1") == (2.0, T0)
    assert store.latest("app", "d1", "temp", module_id="edge") == (3.0, T0)
    assert store.latest("app", "d1", "temp", component="thermostat2") is None


def test_range_bounds_order_and_limit(store: TelemetryStore) -> None:
    feed = Feed()
    seconds = [5, 1, 3, 2, 4, 0]
    messages = [("d1", T0 + timedelta(seconds=s), {"v": s, "flag": s % 2 == 0}) for s in seconds]
    store.write_batch("store", *feed.batch(*messages))
    start, end = T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)
    assert store.range("app", "d1", "v", start, end, 100) == [
        (T0 + timedelta(seconds=s), float(s)) for s in (1, 2, 3, 4)
    ]
    assert store.range("app", "d1", "flag", start, end, 2) == [
        (T0 + timedelta(seconds=1), False),
        (T0 + timedelta(seconds=2), True),
    ]
    naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))  # taken as UTC
    assert len(store.range("app", "d1", "v", *naive, 100)) == 4


def test_invalid_payloads_are_stored_as_messages(store: TelemetryStore) -> None:
    feed = Feed()
    counts = store.write_batch(
        "store", *feed.batch(("d1", T0, b"\x00\x01 not json"), ("d1", T0, b"[1]"))
    )
    assert counts == BatchCounts(2, invalid_json=1, not_object=1)
    assert store.count_messages("app", "d1") == 2
    assert store.latest("app", "d1", "0") is None


def test_every_json_type_lands_in_its_table(store: TelemetryStore) -> None:
    body = {
        "temp": 4.5,
        "count": 3,
        "big": 2**64 - 1,
        "neg": -(2**63),
        "open": True,
        "shut": False,
        "state": "idle",
        "loc": {"lat": 47.6, "lon": -122.1},
        "list": [1, "two", None],
        "none": None,
        "text": 'é "quoted" \u2028 \\',
    }
    counts = store.write_batch("store", *Feed().batch(("d1", T0, body)))
    assert counts == BatchCounts(1, number_rows=4, value_rows=7)
    for name, value in body.items():
        expected = float(value) if type(value) is int else value
        assert store.latest("app", "d1", name) == (expected, T0), name


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", "invalid"),
        (b"", "invalid"),
        (b'{"a": 1', "invalid"),
        (b'{"a": 1} x', "invalid"),
        (b"\xff\xfe", "invalid"),
        (b'{"a": "\xff"}', "invalid"),  # not UTF-8 inside a string
        (b'{"a": "\\ud800"}', "invalid"),  # a lone surrogate escape
        (b'{"a": NaN}', "invalid"),
        (b'{"a": 1, "b": -Infinity}', "invalid"),
        (b'{"a": {"b": [1, nan]}}', "invalid"),  # nested, any case
        (b'{"a": 1e400}', "invalid"),  # beyond a double
        (b'{"a": [' + b"9" * 400 + b"]}", "invalid"),
        (b" -INF ", "invalid"),  # a bare non-finite number
        (b"1e999", "invalid"),
        (b"[1, 2]", "other"),
        (b"42", "other"),
        (b'"text"', "other"),
        (b"null", "other"),
    ],
)
def test_payloads_that_are_not_json_objects_add_no_rows(
    store: TelemetryStore, payload: bytes, kind: str
) -> None:
    counts = store.write_batch("store", *Feed().batch(("d1", T0, payload)))
    expected = (1, 0) if kind == "invalid" else (0, 1)
    assert counts == BatchCounts(1, *expected)
    assert store.count_messages("app", "d1") == 1


def test_look_alikes_of_non_finite_numbers_are_fine(store: TelemetryStore) -> None:
    body = {"info": "NaN", "inflow": 1e300, "e": "e+12", "digits": "9" * 400, "v": 1.5e-300}
    counts = store.write_batch("store", *Feed().batch(("d1", T0, body)))
    assert counts == BatchCounts(1, number_rows=2, value_rows=3)
    assert store.latest("app", "d1", "digits") == ("9" * 400, T0)


def test_nesting_too_deep_to_read_back_is_kept_raw(store: TelemetryStore) -> None:
    def nested(depth: int) -> bytes:  # an object whose field "a" is depth - 1 levels deep
        return b'{"ok": 1, "a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b', "b": "x"}'

    deepest_fine = nested(254)
    counts = store.write_batch(
        "store",
        *Feed().batch(("d1", T0, nested(255)), ("d2", T0, nested(5000)), ("d3", T0, deepest_fine)),
    )
    assert counts == BatchCounts(3, too_deep=2, number_rows=1, value_rows=2)
    assert store.latest("app", "d1", "ok") is None  # nothing of a deep message leaks
    assert store.count_messages("app") == 3
    latest = store.latest("app", "d3", "a")
    assert latest is not None and orjson.dumps(latest[0]) == b"[" * 253 + b"]" * 253


def test_many_brackets_are_not_depth(store: TelemetryStore) -> None:
    body = {"points": [{"lat": i, "lon": [i]} for i in range(300)]}
    counts = store.write_batch("store", *Feed().batch(("d1", T0, body)))
    assert counts == BatchCounts(1, value_rows=1)
    assert store.latest("app", "d1", "points") == (body["points"], T0)
