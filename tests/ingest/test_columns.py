"""Records to the store's batch table: ids, component, timestamp, payload bytes as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from aislehub.ingest.columns import DecodeStats, decode_batch, decode_encoded, rows_from_encoded
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.telemetry import BATCH_SCHEMA, BatchCounts

T0 = 1_700_000_000_123


def rec(
    payload: bytes, props: dict[str, str] | None = None, module: str | None = None
) -> TelemetryRecord:
    return TelemetryRecord("app", "cooler-1", module, T0, props or {}, payload)


def test_ids_component_module_and_timestamp() -> None:
    props = {"$.mid": "m-1", "$.sub": "thermostat1", "$.ct": "application/json", "x": "y"}
    batch = decode_batch([(3, rec(b'{"t": 1}', props, module="edge"))])
    (message,) = batch.messages.to_pylist()
    assert message["message_id"] == "m-1"
    assert message["component"] == "thermostat1"
    assert message["module_id"] == "edge"
    assert message["device_id"] == "cooler-1"
    assert message["log_offset"] == 3
    assert orjson.loads(message["properties"]) == props
    assert message["ts"] == datetime(2023, 11, 14, 22, 13, 20, 123000)


def test_payload_bytes_pass_through_untouched() -> None:
    payloads = [b'{"a": 1}', b"\xff\xfe not utf-8", b"", b"\x00", b"[1]"]
    batch = decode_batch([(i, rec(p)) for i, p in enumerate(payloads)])
    assert batch.messages.column("payload").to_pylist() == payloads
    assert batch.messages.column("message_id").to_pylist() == [None] * len(payloads)
    assert batch.messages.column("component").to_pylist() == [None] * len(payloads)


def test_schemas_and_both_entry_points_agree() -> None:
    records = [(i, rec(b'{"a": %d, "b": "s"}' % i, {"$.mid": str(i)})) for i in range(20)]
    from_records = decode_batch(records)
    from_log = decode_encoded([(o, encode_record(r)) for o, r in records])
    assert from_records.messages.schema == BATCH_SCHEMA
    assert from_records.messages.equals(from_log.messages)
    assert len(from_log) == 20


def test_empty_batch() -> None:
    batch = decode_batch([])
    assert len(batch) == 0
    assert batch.messages.schema == BATCH_SCHEMA


def test_corrupt_entries_are_skipped_and_counted() -> None:
    good = encode_record(rec(b"{}", {"$.mid": "m"}))
    bad_bag = encode_record(rec(b"{}")).replace(b"{}{}", b"[]{}")  # a bag that is a list
    stats = DecodeStats()
    rows = rows_from_encoded([(0, good), (1, b"\x07 not a record"), (2, bad_bag)], stats)
    assert [row[0] for row in rows] == [0]
    assert rows[0][7] == "m"
    assert stats.corrupt == 2


def test_stats_add_up_store_counts() -> None:
    stats = DecodeStats()
    stats.add(BatchCounts(10, invalid_json=1, not_object=2, number_rows=30, value_rows=7))
    stats.add(BatchCounts(5, not_object=1, too_deep=1, number_rows=10))
    totals: dict[str, Any] = {
        "messages": 15,
        "invalid_json": 1,
        "not_object": 3,
        "too_deep": 1,
        "number_rows": 40,
        "value_rows": 7,
    }
    assert {k: getattr(stats, k) for k in totals} == totals
