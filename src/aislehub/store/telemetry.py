"""The telemetry store: where telemetry lands and where the API reads it back.

Writers hand over a :class:`TelemetryBatch` (one Arrow table, one row per message, the
payload still as the device sent it) with the log offset of its last record; the store
explodes the payloads into field rows, keeps them with that offset in one transaction,
and returns what it found (:class:`BatchCounts`). So a consumer that restarts from
:meth:`TelemetryStore.committed_offset` neither loses nor duplicates anything, and the
per-field work runs inside the database engine (vectorised, off the interpreter lock)
rather than in the writer's Python loop.

Data model (the SQL tables of every backend have these columns):

``telemetry_num``
    one row per numeric field of a JSON object payload (JSON int or float → ``DOUBLE``;
    integers beyond 2**53 lose precision, as they would in JavaScript).
``telemetry_val``
    one row per other field, the value as JSON text: strings, booleans, ``null``,
    objects (geopoints ``{"lat": …, "lon": …}``), arrays. Booleans live here rather than
    as 0/1 in ``telemetry_num`` so that a read gives back ``true``, not ``1.0``, and a
    DTDL ``boolean`` never pollutes an average.
``messages``
    one row per message: ids, timestamp, log offset, property bag (JSON), ``valid_json``,
    and ``raw``, the payload bytes when it is not a JSON object (kept, never dropped).

Payload rules (IoT Central's, for a JSON object body): each top-level field is a row. A
payload that is not UTF-8 JSON (RFC 8259: no ``NaN`` or ``Infinity``, no number too large
for a double) is kept in ``raw`` with ``valid_json`` false; valid JSON that is not an
object (array, scalar), or an object nested more than 254 levels deep (more than JSON
encoders such as orjson write back), is kept in ``raw`` with ``valid_json`` true. None of
these adds field rows.

Timestamps are UTC with millisecond precision. Query methods take and return aware UTC
``datetime`` values; ``component=None`` / ``module_id=None`` mean the device's root
component / the device itself, as in IoT Central's URL scheme.

Implementations: :class:`aislehub.store.duckdb_telemetry.DuckDBTelemetryStore`; the
PostgreSQL one joins ``tests/store/test_telemetry_conformance.py`` when it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

__all__ = ["BATCH_SCHEMA", "BatchCounts", "TelemetryBatch", "TelemetryStore"]

BATCH_SCHEMA = pa.schema(
    [
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("module_id", pa.string()),
        pa.field("component", pa.string()),  # the $.sub system property
        pa.field("ts", pa.timestamp("ms"), nullable=False),  # server receive time, UTC
        pa.field("log_offset", pa.int64(), nullable=False),
        pa.field("message_id", pa.string()),  # the $.mid system property
        pa.field("properties", pa.string(), nullable=False),  # the property bag, JSON text
        pa.field("payload", pa.binary(), nullable=False),  # as the device sent it
    ]
)


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """Messages to store: an Arrow table with :data:`BATCH_SCHEMA`, in log order."""

    messages: pa.Table

    @classmethod
    def empty(cls) -> TelemetryBatch:
        return cls(BATCH_SCHEMA.empty_table())

    def __len__(self) -> int:
        return int(self.messages.num_rows)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one stored batch held."""

    messages: int = 0
    invalid_json: int = 0  # payload is not JSON at all: kept raw
    not_object: int = 0  # valid JSON but not an object (array, scalar): kept raw
    too_deep: int = 0  # an object nested deeper than 254 levels: kept raw
    number_rows: int = 0
    value_rows: int = 0


class TelemetryStore(Protocol):
    """Columnar telemetry storage: two write-side methods and the API's queries.

    Thread model: one writer thread calls :meth:`write_batch`; any number of API threads
    call the query methods at the same time and see only committed batches.
    """

    def write_batch(
        self, consumer: str, batch: TelemetryBatch, last_offset: int
    ) -> BatchCounts | None:
        """Store ``batch`` and set ``consumer``'s offset to ``last_offset``, atomically.

        Returns None, storing nothing, when ``last_offset`` is not above the committed
        offset (a replayed batch); that makes the write idempotent.
        """
        ...

    def committed_offset(self, consumer: str) -> int:
        """The last log offset stored for ``consumer``; -1 if it never wrote."""
        ...

    def latest(
        self,
        app_id: str,
        device_id: str,
        name: str,
        component: str | None = None,
        module_id: str | None = None,
    ) -> tuple[Any, datetime] | None:
        """The newest value of one telemetry field and its timestamp, or None."""
        ...

    def range(
        self,
        app_id: str,
        device_id: str,
        name: str,
        start: datetime,
        end: datetime,
        limit: int,
        component: str | None = None,
        module_id: str | None = None,
    ) -> list[tuple[datetime, Any]]:
        """Values of one field with ``start <= ts < end``, oldest first, at most ``limit``."""
        ...

    def count_messages(self, app_id: str, device_id: str | None = None) -> int: ...

    def message_ids(self, app_id: str) -> list[str]:
        """The ``$.mid`` of every stored message of ``app_id`` that had one, in log order."""
        ...

    def recent_message_keys(self, limit: int) -> list[tuple[str, str, str]]:
        """(app, device, message id) of the newest ``limit`` messages that had an id.

        A restarted consumer seeds its duplicate window with these.
        """
        ...

    def close(self) -> None: ...
