"""The store's payload rules against an independent reader (orjson), on generated payloads.

Runs on every telemetry backend: the store splits the payloads (DuckDB's JSON functions;
PostgreSQL's ``json_each``); orjson, a strict RFC 8259 reader, says what the split must
be. Arbitrary bytes must never fail a batch: a batch that fails is retried forever,
stalling the writer behind one device's bad message.

Two differences are the engines', not the stores': PostgreSQL text cannot hold U+0000,
so that store keeps such a character of a field as U+FFFD (and the payload's exact bytes
in ``messages.raw``; ``NUL_AS`` says so per backend), and its ``jsonb`` keeps numbers as
decimals, so a float inside an array reads back as the same number written out
(``5.6e16`` as ``56000000000000000``). Values are compared as JSON numbers are read
(doubles, as the payload rules say), which holds on both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore
from aislehub.store.telemetry import BatchCounts
from tests.services import postgres_database

T0 = 1_767_268_800_000
ANY_TIME = datetime.fromtimestamp(T0 / 1000, UTC)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
)
objects = st.dictionaries(st.text(), values, max_size=8)
# Almost-JSON: the lenient spellings DuckDB's reader takes and RFC 8259 does not.
tokens = st.sampled_from(
    [b"NaN", b"-Infinity", b"inf", b"1e400", b"-1E+999", b"1,", b"[1,]", b'"\\ud800"', b"\xff"]
)
near_json = st.builds(
    lambda name, token: b'{"%s": %s}' % (name.encode(), token),
    st.text(alphabet="abcxyz", min_size=1),
    tokens,
)


_INVALID = object()


NUL_AS = {"duckdb": "\x00", "postgres": "\ufffd"}


class OneStore:
    """One store for all the examples of a test: fresh devices per example."""

    def __init__(self, backend: str, store: DuckDBTelemetryStore | PostgresTelemetryStore) -> None:
        self.backend = backend
        self.store = store
        self.offset = -1

    def write(self, payloads: list[bytes]) -> tuple[list[str], BatchCounts]:
        """One batch, one device per payload."""
        first = self.offset + 1
        self.offset += len(payloads)
        devices = [f"d{first + i}" for i in range(len(payloads))]
        records = [
            (first + i, TelemetryRecord("app", device, None, T0, {}, payload))
            for i, (device, payload) in enumerate(zip(devices, payloads, strict=True))
        ]
        counts = self.store.write_batch("store", decode_batch(records), self.offset)
        assert counts is not None
        return devices, counts

    def fields(self, first_device: str) -> dict[tuple[str, str], Any]:
        """Every stored (device, name) → value from ``first_device``'s batch on."""
        since = int(first_device[1:])
        found: dict[tuple[str, str], Any] = {}
        mark = "?" if self.backend == "duckdb" else "%s"
        for table in ("telemetry_num", "telemetry_val"):
            sql = (
                f"SELECT device_id, name, CAST(value AS TEXT) FROM {table} "
                f"WHERE CAST(substr(device_id, 2) AS INT) >= {mark}"
            )
            for device, name, value in self.store.query(sql, [since])[1]:
                found[device, name] = orjson.loads(value)
        return found

    def as_stored(self, value: Any) -> Any:
        """``value`` as this backend keeps it (see ``NUL_AS``)."""
        nul = NUL_AS[self.backend]
        if isinstance(value, str):
            return value.replace("\x00", nul)
        if isinstance(value, dict):
            return {k.replace("\x00", nul): self.as_stored(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.as_stored(v) for v in value]
        return value


@pytest.fixture(params=["duckdb", "postgres"])
def one(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OneStore]:
    if request.param == "duckdb":
        store = DuckDBTelemetryStore(":memory:")
        yield OneStore("duckdb", store)
        store.close()
        return
    with postgres_database() as url:
        pg = PostgresTelemetryStore(url)
        yield OneStore("postgres", pg)
        pg.close()


def expected(payloads: list[bytes]) -> BatchCounts:
    """What a strict reader finds; DuckDB's trailing-comma leniency aside."""
    totals = dict.fromkeys(("invalid_json", "not_object", "number_rows", "value_rows"), 0)
    for payload in payloads:
        doc = strict(payload)
        if doc is _INVALID:
            totals["invalid_json"] += 1
        elif type(doc) is not dict:
            totals["not_object"] += 1
        else:
            numbers, others = split(doc)
            totals["number_rows"] += len(numbers)
            totals["value_rows"] += len(others)
    return BatchCounts(len(payloads), **totals)


def split(doc: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    numbers = {k: float(v) for k, v in doc.items() if type(v) in (int, float)}
    others = {k: v for k, v in doc.items() if type(v) not in (int, float)}
    return numbers, others


def strict(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _INVALID


def as_doubles(value: Any) -> Any:
    """Every number as the double a JSON reader makes of it (booleans stay booleans)."""
    if type(value) is int:
        return float(value)
    if isinstance(value, dict):
        return {k: as_doubles(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(as_doubles(v) for v in value)
    return value


def test_json_objects_split_as_orjson_reads_them(one: OneStore) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(objects, min_size=1, max_size=10))
    def check(docs: list[dict[str, Any]]) -> None:
        devices, counts = one.write([orjson.dumps(doc) for doc in docs])
        assert counts == expected([orjson.dumps(doc) for doc in docs])
        want = {
            (device, one.as_stored(name)): one.as_stored(value)
            for device, doc in zip(devices, docs, strict=True)
            for name, value in {**split(doc)[0], **split(doc)[1]}.items()
        }
        assert as_doubles(one.fields(devices[0])) == as_doubles(want)
        if want:  # and the API's read path agrees
            (device, name), value = next(iter(want.items()))
            assert as_doubles(one.store.latest("app", device, name)) == as_doubles(
                (value, ANY_TIME)
            )

    check()


def test_any_bytes_are_stored_never_refused(one: OneStore) -> None:
    payloads = st.binary(max_size=64) | st.text(max_size=64).map(str.encode) | near_json

    @settings(max_examples=60, deadline=None)
    @given(st.lists(payloads, min_size=1, max_size=10))
    def check(batch: list[bytes]) -> None:
        devices, counts = one.write(batch)
        assert one.store.count_messages("app") == one.offset + 1
        # DuckDB also reads trailing commas (storing the values without them); nothing
        # else lenient gets in, and a stored number is always finite.
        lenient = [p for p in batch if strict(p) is _INVALID and b"," in p]
        strict_counts = expected([p for p in batch if p not in lenient])
        assert counts.invalid_json <= strict_counts.invalid_json + len(lenient)
        assert counts.invalid_json >= strict_counts.invalid_json
        assert counts.not_object == strict_counts.not_object
        if not lenient:
            assert counts == expected(batch)
        stored = one.fields(devices[0]).values()
        assert all(math.isfinite(v) for v in stored if type(v) is float)

    check()
