"""Payload to columns: numbers apart from other values, raw kept, ids and component."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from aislehub.ingest.columns import DecodeStats, decode_batch, decode_encoded
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.telemetry import MESSAGES_SCHEMA, NUM_SCHEMA, VAL_SCHEMA, TelemetryBatch

T0 = 1_700_000_000_123


def rec(
    payload: bytes, props: dict[str, str] | None = None, module: str | None = None
) -> TelemetryRecord:
    return TelemetryRecord("app", "cooler-1", module, T0, props or {}, payload)


def fields(table: Any) -> dict[str, Any]:
    return {row["name"]: row["value"] for row in table.to_pylist()}


def test_numbers_and_other_values_split() -> None:
    payload = {
        "temp": 4.5,
        "count": 3,
        "open": True,
        "state": "idle",
        "loc": {"lat": 47.6, "lon": -122.1},
        "list": [1, 2],
        "none": None,
    }
    batch = decode_batch([(7, rec(orjson.dumps(payload)))])
    assert fields(batch.numbers) == {"temp": 4.5, "count": 3.0}
    assert {k: orjson.loads(v) for k, v in fields(batch.values).items()} == {
        "open": True,
        "state": "idle",
        "loc": {"lat": 47.6, "lon": -122.1},
        "list": [1, 2],
        "none": None,
    }
    (message,) = batch.messages.to_pylist()
    assert message["raw"] is None and message["valid_json"] is True
    assert message["log_offset"] == 7


def test_bool_is_never_a_number() -> None:
    batch = decode_batch([(0, rec(b'{"a": false, "b": 1}'))])
    assert fields(batch.numbers) == {"b": 1.0}
    assert fields(batch.values) == {"a": "false"}


@pytest.mark.parametrize(
    ("payload", "valid"),
    [
        (b"not json", False),
        (b"", False),
        (b'{"a": 1', False),
        (b"\xff\xfe", False),
        (b"[1, 2]", True),
        (b"42", True),
        (b'"text"', True),
    ],
)
def test_non_object_payload_is_kept_raw_and_counted(payload: bytes, valid: bool) -> None:
    stats = DecodeStats()
    batch = decode_batch([(0, rec(payload))], stats)
    assert batch.numbers.num_rows == batch.values.num_rows == 0
    (message,) = batch.messages.to_pylist()
    assert message["raw"] == payload
    assert message["valid_json"] is valid
    assert (stats.invalid_json, stats.not_object) == ((0, 1) if valid else (1, 0))


def test_ids_component_module_and_timestamp() -> None:
    props = {"$.mid": "m-1", "$.sub": "thermostat1", "$.ct": "application/json", "x": "y"}
    batch = decode_batch([(3, rec(b'{"t": 1}', props, module="edge"))])
    (message,) = batch.messages.to_pylist()
    assert message["message_id"] == "m-1"
    assert message["component"] == "thermostat1"
    assert message["module_id"] == "edge"
    assert orjson.loads(message["properties"]) == props
    assert message["ts"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    (row,) = batch.numbers.to_pylist()
    assert (row["component"], row["module_id"], row["device_id"], row["ts"]) == (
        "thermostat1",
        "edge",
        "cooler-1",
        message["ts"],
    )


def test_rows_point_at_their_own_message() -> None:
    entries = [
        (i, TelemetryRecord("app", f"d{i}", None, T0 + i, {}, b'{"v": %d, "s": "x"}' % i))
        for i in range(50)
    ]
    entries.insert(10, (99, rec(b"garbage")))
    batch = decode_batch(entries)
    for row in batch.numbers.to_pylist():
        assert row["device_id"] == f"d{int(row['value'])}"
    assert batch.values.column("device_id").to_pylist() == [f"d{i}" for i in range(50)]
    assert batch.messages.num_rows == 51


def test_schemas_and_both_entry_points_agree() -> None:
    records = [(i, rec(b'{"a": %d, "b": "s"}' % i, {"$.mid": str(i)})) for i in range(20)]
    from_records = decode_batch(records)
    from_log = decode_encoded([(o, encode_record(r)) for o, r in records])
    assert from_records.numbers.schema == NUM_SCHEMA
    assert from_records.values.schema == VAL_SCHEMA
    assert from_records.messages.schema == MESSAGES_SCHEMA
    for a, b in zip(_tables(from_records), _tables(from_log), strict=True):
        assert a.equals(b)


def test_empty_batch() -> None:
    batch = decode_batch([])
    assert [t.num_rows for t in _tables(batch)] == [0, 0, 0]


def _tables(batch: TelemetryBatch) -> list[Any]:
    return [batch.numbers, batch.values, batch.messages]


def test_nesting_too_deep_to_rewrite_is_kept_raw() -> None:
    deep = b'{"ok": 1, "a": ' + b"[" * 300 + b"]" * 300 + b', "b": "x"}'
    stats = DecodeStats()
    batch = decode_batch([(0, rec(deep)), (1, rec(b'{"fine": 2}'))], stats)
    assert fields(batch.numbers) == {"fine": 2.0}  # nothing of the deep message leaks
    assert batch.values.num_rows == 0
    assert batch.messages.column("raw").to_pylist() == [deep, None]
    assert stats.too_deep == 1
