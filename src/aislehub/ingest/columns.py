"""Turn a batch of telemetry records into the store's batch table.

This is the store writer's hot loop, and it stays O(1) per message in Python: unpack the
record framing, read ``$.mid`` and ``$.sub`` from the property bag, and transpose the
rows into Arrow columns with one ``zip(*rows)``. The payload goes on as bytes: UTF-8
and JSON validation and the split into field rows happen in the store, in the database
engine's vectorised code (see :mod:`aislehub.store.telemetry` for the payload rules).

Timestamps are the server's receive time (``enqueued_ms``); the component is the
``$.sub`` system property and the message id ``$.mid``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import pyarrow as pa

from aislehub.ingest.record import RecordError, TelemetryRecord, decode_parts
from aislehub.store.telemetry import BATCH_SCHEMA, BatchCounts, TelemetryBatch

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

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DecodeStats:
    """Running totals over every batch decoded (here) and stored (by the store)."""

    messages: int = 0
    invalid_json: int = 0  # payload is not JSON at all: kept raw
    not_object: int = 0  # valid JSON but not an object (array, scalar): kept raw
    too_deep: int = 0  # an object nested too deep to read back: kept raw
    corrupt: int = 0  # log entries that are not records at all: skipped (a bug)
    number_rows: int = 0
    value_rows: int = 0
    unknown_fields: int = 0  # not in the device's template: kept aside
    mistyped_fields: int = 0  # not fitting the template's schema: kept aside

    def add(self, counts: BatchCounts) -> None:
        """Count what the store found in one batch."""
        self.messages += counts.messages
        self.invalid_json += counts.invalid_json
        self.not_object += counts.not_object
        self.too_deep += counts.too_deep
        self.number_rows += counts.number_rows
        self.value_rows += counts.value_rows
        self.unknown_fields += counts.unknown_fields
        self.mistyped_fields += counts.mistyped_fields


# One message, whichever form it came in. A plain tuple: building a NamedTuple per
# message costs several times more. Fields: log offset, app, device, module,
# enqueued_ms, properties as JSON, payload, $.mid, $.sub.
Row = tuple[int, str, str, str | None, int, bytes, bytes, str | None, str | None]


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
            props = loads(props_json) if props_json else {}
            if type(props) is not dict:
                raise RecordError("property bag is not a JSON object")
            mid, sub = props.get(MESSAGE_ID), props.get(COMPONENT)
            if not (mid is None or type(mid) is str) or not (sub is None or type(sub) is str):
                raise RecordError("$.mid or $.sub is not a string")
        except (RecordError, orjson.JSONDecodeError) as exc:
            log.error("skipping undecodable log record at offset %d: %s", offset, exc)
            if stats is not None:
                stats.corrupt += 1
            continue
        out.append((offset, app, device, module, ts, props_json or b"{}", payload, mid, sub))
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
            dumps(r.properties),
            r.payload,
            r.properties.get(MESSAGE_ID),
            r.properties.get(COMPONENT),
        )
        for o, r in entries
    ]


def decode_batch(entries: Iterable[tuple[int, TelemetryRecord]]) -> TelemetryBatch:
    """The store's batch from ``(log offset, record)`` pairs."""
    return to_batch(rows_from_records(entries))


def decode_encoded(
    entries: Iterable[tuple[int, bytes]], stats: DecodeStats | None = None
) -> TelemetryBatch:
    """Like :func:`decode_batch`, straight from log entries."""
    return to_batch(rows_from_encoded(entries, stats))


def to_batch(rows: Sequence[Row]) -> TelemetryBatch:
    """One Arrow table for ``rows``: a column per field, built in C from the transpose,
    each converted once, straight to its type (the UTF-8 of the property bags is
    checked by that conversion)."""
    if not rows:
        return TelemetryBatch.empty()
    offset, app, device, module, ts, props, payload, mid, sub = zip(*rows, strict=True)
    columns = [
        pa.array(app, pa.string()),
        pa.array(device, pa.string()),
        pa.array(module, pa.string()),
        pa.array(sub, pa.string()),
        pa.array(ts, pa.timestamp("ms")),
        pa.array(offset, pa.int64()),
        pa.array(mid, pa.string()),
        pa.array(props, pa.string()),  # UTF-8 bytes (orjson wrote them), checked here
        pa.array(payload, pa.binary()),
    ]
    return TelemetryBatch(pa.Table.from_arrays(columns, schema=BATCH_SCHEMA))
