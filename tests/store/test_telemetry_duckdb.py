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
from aislehub.store import duckdb_telemetry
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
    payloads = {
        bytes(range(256)): False,  # not UTF-8
        b"\x00not json": False,  # UTF-8, not JSON
        b'{"a": NaN}': False,
        '["é", 1]'.encode(): True,  # JSON, not an object
        b'{"a":' + b"[" * 300 + b"]" * 300 + b"}": True,  # an object, too deep
        b'{"a": 1}': None,  # an object: its fields are the rows, no raw copy
    }
    entries = [(i, TelemetryRecord("app", "d1", None, T0, {}, p)) for i, p in enumerate(payloads)]
    store.write_batch("store", decode_batch(entries), len(entries) - 1)
    store.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    rows = con.execute("SELECT raw, valid_json FROM messages ORDER BY log_offset").fetchall()
    con.close()
    expected = [(None if valid is None else p, valid is not False) for p, valid in payloads.items()]
    assert rows == expected


def test_field_rows_as_sql_sees_them(store: DuckDBTelemetryStore, tmp_path: Path) -> None:
    body = b'{"t": 4.5, "n": 7, "open": false, "s": "x", "loc": {"lat": 1.5}, "z": null}'
    props = {"$.sub": "th1", "$.mid": "m"}
    entries = [(0, TelemetryRecord("app", "d1", "edge", T0, props, body))]
    store.write_batch("store", decode_batch(entries), 0)
    store.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    keys = "app_id, device_id, module_id, component, epoch_ms(ts)"
    numbers = con.sql(f"SELECT {keys}, name, value FROM telemetry_num ORDER BY name").fetchall()
    values = con.sql(f"SELECT {keys}, name, value FROM telemetry_val ORDER BY name").fetchall()
    message = con.sql(f"SELECT {keys}, message_id, properties FROM messages").fetchall()
    con.close()
    head = ("app", "d1", "edge", "th1", T0)
    assert numbers == [(*head, "n", 7.0), (*head, "t", 4.5)]
    assert values == [
        (*head, "loc", '{"lat":1.5}'),
        (*head, "open", "false"),
        (*head, "s", '"x"'),
        (*head, "z", "null"),
    ]
    assert message == [(*head, "m", '{"$.sub":"th1","$.mid":"m"}')]


def test_memory_limit_and_checkpoint_threshold(tmp_path: Path) -> None:
    store = DuckDBTelemetryStore(tmp_path / "t.duckdb", memory_limit="300MB")
    cur = store._reader()
    limit = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    threshold = cur.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]
    store.close()
    assert limit.replace(" ", "") in {"300.0MB", "286.1MiB"}
    assert threshold.replace(" ", "") in {"64.0MB", "61.0MiB"}


@pytest.mark.parametrize("stage", ["batch", "last statement"])
def test_failed_write_leaves_nothing_behind(
    store: DuckDBTelemetryStore, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    good, last = batch_of(0, 10)
    store.write_batch("store", good, last)
    broken, _ = batch_of(10, 10)
    if stage == "batch":
        broken = TelemetryBatch(pa.table({"nonsense": [1]}))
    else:  # messages and numbers are in when the values fail
        script = duckdb_telemetry._WRITE.replace("INTO telemetry_val", "INTO nowhere")
        monkeypatch.setattr(duckdb_telemetry, "_WRITE", script)
    with pytest.raises(duckdb.Error):
        store.write_batch("store", broken, 19)
    monkeypatch.undo()
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
