"""DuckDB telemetry store specifics: schema, atomic batches, one writer beside readers."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.telemetry import TelemetryBatch

T0 = 1_767_268_800_000  # 2026-01-01T12:00:00Z


def batch_of(first: int, n: int, device: str = "d1") -> tuple[TelemetryBatch, int]:
    entries = [
        (
            o,
            TelemetryRecord(
                "app", device, None, T0 + o, {"$.mid": str(o)}, orjson.dumps({"v": o, "s": "x"})
            ),
        )
        for o in range(first, first + n)
    ]
    return decode_batch(entries), first + n - 1


@pytest.fixture
def store(tmp_path: Path) -> DuckDBTelemetryStore:
    return DuckDBTelemetryStore(tmp_path / "t.duckdb")


def test_schema(tmp_path: Path) -> None:
    DuckDBTelemetryStore(tmp_path / "t.duckdb").close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    con.close()
    columns = {(t, c): ty for t, c, ty in rows}
    assert columns[("telemetry_num", "ts")] == "TIMESTAMP"
    assert columns[("telemetry_num", "value")] == "DOUBLE"
    assert columns[("telemetry_val", "value")] == "JSON"
    assert columns[("messages", "raw")] == "BLOB"
    assert columns[("messages", "log_offset")] == "BIGINT"
    assert columns[("consumer_offsets", "log_offset")] == "BIGINT"


def test_raw_payload_bytes_are_exact(store: DuckDBTelemetryStore, tmp_path: Path) -> None:
    payload = bytes(range(256))
    entries = [(0, TelemetryRecord("app", "d1", None, T0, {}, payload))]
    store.write_batch("store", decode_batch(entries), 0)
    store.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    assert con.execute("SELECT raw, valid_json FROM messages").fetchall() == [(payload, False)]
    con.close()


def test_failed_write_leaves_nothing_behind(store: DuckDBTelemetryStore) -> None:
    good, last = batch_of(0, 10)
    store.write_batch("store", good, last)
    bad_batch, _ = batch_of(10, 10)
    broken = TelemetryBatch(bad_batch.numbers, bad_batch.values, pa.table({"nonsense": [1]}))
    with pytest.raises(duckdb.Error):
        store.write_batch("store", broken, 19)
    assert store.committed_offset("store") == 9
    assert store.count_messages("app") == 10
    latest = store.latest("app", "d1", "v")
    assert latest is not None and latest[0] == 9.0
    retry, last = batch_of(10, 10)
    assert store.write_batch("store", retry, last)
    assert store.count_messages("app") == 20


def test_readers_see_whole_batches_while_one_thread_writes(store: DuckDBTelemetryStore) -> None:
    batches = [batch_of(i * 100, 100) for i in range(40)]
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for batch, last in batches:
                store.write_batch("store", batch, last)
        except BaseException as exc:  # surface writer failures in the test thread
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                count = store.count_messages("app")
                assert count % 100 == 0  # never half a batch
                latest = store.latest("app", "d1", "v")
                assert latest is None or latest[0] % 100 == 99
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert store.count_messages("app") == 4000
    assert store.committed_offset("store") == 3999
