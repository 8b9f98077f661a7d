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
``telemetry_unmodeled``
    one row per field of a device with a template that the template does not name
    (reason ``unknown``) or whose value does not fit its schema (``mistyped``): kept as
    JSON, counted per device, never in the typed tables (so never in an average).
``messages``
    one row per message: ids, timestamp, log offset, property bag (JSON), ``valid_json``,
    and ``raw``, the payload bytes when it is not a JSON object (kept, never dropped).

Payload rules (IoT Central's, for a JSON object body): each top-level field is a row. A
payload that is not UTF-8 JSON (RFC 8259: no ``NaN`` or ``Infinity``, no number too large
for a double) is kept in ``raw`` with ``valid_json`` false; valid JSON that is not an
object (array, scalar), or an object nested more than 254 levels deep (more than JSON
encoders such as orjson write back), is kept in ``raw`` with ``valid_json`` true. None of
these adds field rows.

Typed ingest: the store keeps a catalog (:class:`Catalog`) of the devices and of the
telemetry each template declares: per component, the field name, its kind (the DTDL
schema: ``double``, ``integer``, ``boolean``, ``dateTime``, ``enum``, ``object``, …),
enum values, unit and semantic type. A device with a template has each field checked
against it (component chosen by ``$.sub``; a module's telemetry against the module's
Interface when the template declares the module, else it is stored untyped); numeric
kinds go to ``telemetry_num``,
other kinds to ``telemetry_val``. Every field row carries the ``log_offset`` of its
message, which identifies the message across the tables.

Timestamps are UTC with millisecond precision. Query methods take and return aware UTC
``datetime`` values; ``component=None`` / ``module_id=None`` mean the device's root
component / the device itself, as in IoT Central's URL scheme.

Implementations: :class:`aislehub.store.duckdb_telemetry.DuckDBTelemetryStore` and
:class:`aislehub.store.postgres_telemetry.PostgresTelemetryStore`; both pass
``tests/store/test_telemetry_conformance.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

__all__ = [
    "BATCH_SCHEMA",
    "DEVICE_CATALOG_SCHEMA",
    "TEMPLATE_FIELDS_SCHEMA",
    "BatchCounts",
    "Catalog",
    "TelemetryBatch",
    "TelemetryStore",
    "UnmodeledField",
]

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


DEVICE_CATALOG_SCHEMA = pa.schema(
    [
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("template_id", pa.string()),  # None: untyped
        pa.field("provisioned", pa.bool_(), nullable=False),
        pa.field("simulated", pa.bool_(), nullable=False),
        pa.field("enabled", pa.bool_(), nullable=False),
    ]
)
TEMPLATE_FIELDS_SCHEMA = pa.schema(
    [
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("template_id", pa.string(), nullable=False),
        # "" for the root component; "<module>/" and "<module>/<component>" for a module's
        pa.field("component", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("enum_values", pa.list_(pa.string())),  # each value as JSON text
        pa.field("unit", pa.string()),
        pa.field("semantic_type", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class Catalog:
    """What typed ingest needs to know: devices (:data:`DEVICE_CATALOG_SCHEMA`) and the
    telemetry of their templates (:data:`TEMPLATE_FIELDS_SCHEMA`), both complete."""

    devices: pa.Table
    fields: pa.Table

    @classmethod
    def empty(cls) -> Catalog:
        return cls(DEVICE_CATALOG_SCHEMA.empty_table(), TEMPLATE_FIELDS_SCHEMA.empty_table())


@dataclass(frozen=True, slots=True)
class UnmodeledField:
    """Fields of one device kept aside by typed ingest, grouped by field and reason."""

    component: str | None
    module_id: str | None
    name: str
    reason: str  # "unknown" or "mistyped"
    count: int
    last_ts: datetime
    last_value: Any


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
    unknown_fields: int = 0  # fields a device's template does not name: kept aside
    mistyped_fields: int = 0  # fields whose value does not fit the template: kept aside


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

    def sync_catalog(self, catalog: Catalog) -> None:
        """Replace the device and template-field catalog; later batches are typed by it."""
        ...

    def unmodeled(self, app_id: str, device_id: str) -> list[UnmodeledField]:
        """The fields of a device that typed ingest kept aside, by field and reason."""
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
