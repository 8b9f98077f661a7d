"""The telemetry store: where decoded telemetry lands and where the API reads it back.

Writers hand over a :class:`TelemetryBatch` (three Arrow tables, one per SQL table) with
the log offset of its last record; the store keeps the rows and that offset in one
transaction, so a consumer that restarts from :meth:`TelemetryStore.committed_offset`
neither loses nor duplicates anything.

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
    one row per message: ids, timestamp, log offset, property bag (JSON), and ``raw``,
    the payload bytes when it is not a JSON object (kept, never dropped).

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

__all__ = [
    "MESSAGES_SCHEMA",
    "NUM_SCHEMA",
    "VAL_SCHEMA",
    "TelemetryBatch",
    "TelemetryStore",
]

_TS = pa.timestamp("ms")
_KEYS = [
    pa.field("app_id", pa.string(), nullable=False),
    pa.field("device_id", pa.string(), nullable=False),
    pa.field("module_id", pa.string()),
    pa.field("component", pa.string()),
]
NUM_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("name", pa.string(), False),
        pa.field("ts", _TS, False),
        ("value", pa.float64()),
    ]
)
VAL_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("name", pa.string(), False),
        pa.field("ts", _TS, False),
        ("value", pa.string()),
    ]
)
MESSAGES_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("ts", _TS, False),
        pa.field("log_offset", pa.int64(), False),
        ("message_id", pa.string()),
        ("properties", pa.string()),  # JSON object text
        ("raw", pa.binary()),  # the payload, only when it is not a JSON object
        pa.field("valid_json", pa.bool_(), False),
    ]
)


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """Rows for the three tables, as Arrow tables with the schemas above."""

    numbers: pa.Table
    values: pa.Table
    messages: pa.Table

    @classmethod
    def empty(cls) -> TelemetryBatch:
        return cls(
            NUM_SCHEMA.empty_table(), VAL_SCHEMA.empty_table(), MESSAGES_SCHEMA.empty_table()
        )


class TelemetryStore(Protocol):
    """Columnar telemetry storage: two write-side methods and the API's queries.

    Thread model: one writer thread calls :meth:`write_batch`; any number of API threads
    call the query methods at the same time and see only committed batches.
    """

    def write_batch(self, consumer: str, batch: TelemetryBatch, last_offset: int) -> bool:
        """Store ``batch`` and set ``consumer``'s offset to ``last_offset``, atomically.

        Returns False, storing nothing, when ``last_offset`` is not above the committed
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
