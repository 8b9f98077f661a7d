"""Turn a batch of telemetry records into the store's columns.

This is the store writer's hot loop, so it leaves to C whatever C can do: message-level
columns come from one ``zip(*rows)`` transpose, and the ids, component and timestamp are
fanned out to the field rows with Arrow ``take`` instead of being repeated in Python.
What remains in Python is one ``orjson.loads`` per message and, per field, a type test
and three appends (one ``orjson.dumps`` for non-numbers).

Payload rules (IoT Central's, for a JSON object body): each top-level field is a
telemetry row; JSON numbers go to ``telemetry_num``, anything else (strings, booleans,
null, objects such as geopoints, arrays) to ``telemetry_val`` as JSON text. A payload
that is not valid JSON, or valid JSON but not an object, is kept whole in
``messages.raw`` and counted; it is never dropped. Timestamps are the server's receive
time (``enqueued_ms``); the component is the ``$.sub`` system property and the message
id ``$.mid``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from aislehub.ingest.record import RecordError, TelemetryRecord, decode_parts
from aislehub.store.telemetry import MESSAGES_SCHEMA, NUM_SCHEMA, VAL_SCHEMA, TelemetryBatch

__all__ = [
    "COMPONENT",
    "MESSAGE_ID",
    "DecodeStats",
    "Row",
    "decode_batch",
    "decode_encoded",
    "rows_from_encoded",
    "rows_from_records",
    "to_batch",
]

COMPONENT = "$.sub"  # IoT Hub system property: Plug and Play component of the message
MESSAGE_ID = "$.mid"
_NUMBER = frozenset({int, float})  # exact types: bool is an int subclass and must not match
_INVALID = object()

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DecodeStats:
    """Running totals over every batch decoded with this object."""

    messages: int = 0
    invalid_json: int = 0  # payload is not JSON at all: kept raw
    not_object: int = 0  # valid JSON but not an object (array, scalar): kept raw
    too_deep: int = 0  # JSON object nested too deep to re-serialize a field: kept raw
    corrupt: int = 0  # log entries that are not records at all: skipped (a bug)
    number_rows: int = 0
    value_rows: int = 0


# One message, whichever form it came in. A plain tuple: building a NamedTuple per
# message costs several times more. Fields: log offset, app, device, module,
# enqueued_ms, properties, properties as JSON, payload.
Row = tuple[int, str, str, str | None, int, dict[str, str], bytes, bytes]


def rows_from_encoded(
    entries: Iterable[tuple[int, bytes]], stats: DecodeStats | None = None
) -> list[Row]:
    """Rows from ingest log entries (encoded records); the property JSON is reused as is.

    An entry that is not a valid record is skipped and counted (``stats.corrupt``): it
    passed the log's CRC, so only a bug could have written it, and refusing the whole
    batch would stall the writer on it forever.
    """
    loads, out = orjson.loads, []
    for offset, data in entries:
        try:
            app, device, module, ts, props_json, payload = decode_parts(data)
            props_json = props_json or b"{}"
            row = (offset, app, device, module, ts, loads(props_json), props_json, payload)
        except (RecordError, orjson.JSONDecodeError) as exc:
            log.error("skipping undecodable log record at offset %d: %s", offset, exc)
            if stats is not None:
                stats.corrupt += 1
            continue
        out.append(row)
    return out


def rows_from_records(entries: Iterable[tuple[int, TelemetryRecord]]) -> list[Row]:
    dumps = orjson.dumps
    return [
        (
            o,
            r.app_id,
            r.device_id,
            r.module_id,
            r.enqueued_ms,
            r.properties,
            dumps(r.properties),
            r.payload,
        )
        for o, r in entries
    ]


def decode_batch(
    entries: Iterable[tuple[int, TelemetryRecord]], stats: DecodeStats | None = None
) -> TelemetryBatch:
    """Columns for the three telemetry tables from ``(log offset, record)`` pairs."""
    return to_batch(rows_from_records(entries), stats)


def decode_encoded(
    entries: Iterable[tuple[int, bytes]], stats: DecodeStats | None = None
) -> TelemetryBatch:
    """Like :func:`decode_batch`, straight from log entries."""
    return to_batch(rows_from_encoded(entries, stats), stats)


def _parse(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _INVALID


@dataclass(slots=True)
class _Fields:
    """Top-level fields of JSON object payloads, each with its message's index."""

    msg: list[int]
    name: list[str]
    value: list[Any]

    def truncate(self, length: int) -> None:
        del self.msg[length:], self.name[length:], self.value[length:]


def _explode(
    payloads: Sequence[bytes], stats: DecodeStats
) -> tuple[_Fields, _Fields, list[bytes | None], list[bool]]:
    """Number fields, other fields (as JSON bytes), and raw bytes and validity per message."""
    numbers, others = _Fields([], [], []), _Fields([], [], [])
    # Bound methods: this loop runs once per field, and attribute lookups add up.
    num_msg, num_name, num_value = numbers.msg.append, numbers.name.append, numbers.value.append
    val_msg, val_name, val_value = others.msg.append, others.name.append, others.value.append
    dumps = orjson.dumps
    raw: list[bytes | None] = []
    valid: list[bool] = []
    for index, payload in enumerate(payloads):
        doc = _parse(payload)
        if type(doc) is dict:
            marks = len(numbers.msg), len(others.msg)
            try:
                for name, value in doc.items():
                    if type(value) in _NUMBER:
                        num_msg(index)
                        num_name(name)
                        num_value(value)
                    else:
                        val_msg(index)
                        val_name(name)
                        val_value(dumps(value))
            except orjson.JSONEncodeError:
                # orjson reads 1024 levels of nesting but writes only 254: a value
                # between the two cannot become JSON text again. Keep the message raw
                # rather than let it fail (and retry) the whole batch forever.
                numbers.truncate(marks[0])
                others.truncate(marks[1])
                raw.append(payload)
                valid.append(True)
                stats.too_deep += 1
                continue
            raw.append(None)
            valid.append(True)
        else:
            raw.append(payload)
            valid.append(doc is not _INVALID)
            stats.invalid_json += doc is _INVALID
            stats.not_object += doc is not _INVALID
    return numbers, others, raw, valid


def _json_text(values: Iterable[bytes]) -> pa.Array:
    # orjson gives UTF-8 bytes; one vectorized cast validates and relabels them as text.
    return pa.array(values, pa.binary()).cast(pa.string())


def _field_table(
    per_message: list[pa.Array], fields: _Fields, values: pa.Array, schema: pa.Schema
) -> pa.Table:
    """Field rows, with the message columns (app, device, module, component, ts) fanned out."""
    index = pa.array(fields.msg, pa.int32())
    app, device, module, component, ts = (column.take(index) for column in per_message)
    columns = [app, device, module, component, pa.array(fields.name, pa.string()), ts, values]
    return pa.Table.from_arrays(columns, schema=schema)


def to_batch(rows: Sequence[Row], stats: DecodeStats | None = None) -> TelemetryBatch:
    """The three tables' columns for ``rows``; counts go to ``stats``."""
    stats = stats if stats is not None else DecodeStats()
    if not rows:
        return TelemetryBatch.empty()
    offset, app, device, module, ts, props, props_json, payload = zip(*rows, strict=True)
    number_fields, other_fields, raw, valid = _explode(payload, stats)
    per_message = [
        pa.array(app, pa.string()),
        pa.array(device, pa.string()),
        pa.array(module, pa.string()),
        pa.array([p.get(COMPONENT) for p in props], pa.string()),
        pa.array(ts, pa.int64()).cast(pa.timestamp("ms")),
    ]
    number_values = pa.array(number_fields.value, pa.float64())
    numbers = _field_table(per_message, number_fields, number_values, NUM_SCHEMA)
    values = _field_table(per_message, other_fields, _json_text(other_fields.value), VAL_SCHEMA)
    message_columns = [
        *per_message,
        pa.array(offset, pa.int64()),
        pa.array([p.get(MESSAGE_ID) for p in props], pa.string()),
        _json_text(props_json),
        pa.array(raw, pa.binary()),
        pa.array(valid, pa.bool_()),
    ]
    stats.messages += len(rows)
    stats.number_rows += numbers.num_rows
    stats.value_rows += values.num_rows
    messages = pa.Table.from_arrays(message_columns, schema=MESSAGES_SCHEMA)
    return TelemetryBatch(numbers, values, messages)
