"""The typing catalog: which devices have which template, and what telemetry each declares.

Typed ingest runs inside the telemetry store (see :mod:`aislehub.store.telemetry`), which
knows nothing of DTDL: this module flattens the metadata into the two tables it reads.
A template's telemetry becomes one row per (component, name) with the schema reduced to
the *kind* the store checks: the primitive's name, ``enum`` (with its values as JSON
text), ``object``, ``map``, ``array``, ``geopoint`` (IoT Central's point, also GeoJSON
``point``) or ``geometry`` (the other GeoJSON kinds).

:class:`CatalogSource` is polled by the store writer before each batch; it rebuilds the
catalog only when the metadata changed, by any process (a CLI write included).
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
import pyarrow as pa

from aislehub.hub.templates import CompiledTemplate, TemplateCatalog
from aislehub.models import (
    ArraySchema,
    EnumSchema,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
    Schema,
    Telemetry,
)
from aislehub.store.metadata import MetadataStore
from aislehub.store.telemetry import DEVICE_CATALOG_SCHEMA, TEMPLATE_FIELDS_SCHEMA, Catalog

__all__ = ["CatalogSource", "build_catalog", "schema_kind"]

log = logging.getLogger(__name__)

_POINTS = frozenset({"geopoint", "point"})


def schema_kind(schema: Schema) -> tuple[str, list[str] | None]:
    """The kind the store checks for ``schema``, and the enum values as JSON text."""
    match schema:
        case Primitive(name=name):
            return name, None
        case EnumSchema(values=values):
            return "enum", [orjson.dumps(v.value).decode() for v in values]
        case ObjectSchema():
            return "object", None
        case MapSchema():
            return "map", None
        case ArraySchema():
            return "array", None
        case GeoSchema(kind=kind):
            return ("geopoint" if kind in _POINTS else "geometry"), None
    raise TypeError(f"not a schema: {schema!r}")  # pragma: no cover - exhaustive above


def _field_rows(app_id: str, template: CompiledTemplate) -> list[dict[str, object]]:
    """One row per declared telemetry. Its ``component`` key: "" for the root component,
    the component's name, and for an IoT Edge module "<module>/" or "<module>/<component>"
    (DTDL names never hold a "/")."""
    views = [("", template.model.root), *template.model.components.items()]
    for module, model in template.modules.items():
        views += [(f"{module}/", model.root)]
        views += [(f"{module}/{name}", view) for name, view in model.components.items()]
    rows: list[dict[str, object]] = []
    for component, view in views:
        for content in view.contents:
            if isinstance(content, Telemetry):
                kind, values = schema_kind(content.schema)
                rows.append(
                    {
                        "app_id": app_id,
                        "template_id": template.id,
                        "component": component,
                        "name": content.name,
                        "kind": kind,
                        "enum_values": values,
                        "unit": content.unit,
                        "semantic_type": content.semantic_type,
                    }
                )
    return rows


def build_catalog(store: MetadataStore, templates: TemplateCatalog) -> Catalog:
    """The whole catalog, from the metadata store as it is now."""
    names = DEVICE_CATALOG_SCHEMA.names
    devices = [dict(zip(names, row, strict=True)) for row in store.device_catalog()]
    fields: list[dict[str, object]] = []
    for record in store.templates.every():
        try:
            fields += _field_rows(record.app_id, templates.compiled(record))
        except Exception:  # a stored template that no longer parses: its devices go untyped
            log.exception("template %s of app %s cannot be compiled", record.id, record.app_id)
    return Catalog(
        pa.Table.from_pylist(devices, schema=DEVICE_CATALOG_SCHEMA),
        pa.Table.from_pylist(fields, schema=TEMPLATE_FIELDS_SCHEMA),
    )


class CatalogSource:
    """Hands out a fresh catalog when the metadata changed since the last one.

    Called from the store writer's worker thread. The in-process write generation is
    checked on every call (a device provisioned a moment ago types its first message);
    writes by other processes are noticed by a fingerprint query, at most every
    ``poll_seconds``.
    """

    def __init__(
        self, store: MetadataStore, templates: TemplateCatalog, poll_seconds: float = 1.0
    ) -> None:
        self._store = store
        self._templates = templates
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._fingerprint: tuple[object, ...] | None = None
        self._polled = 0.0

    def __call__(self) -> Catalog | None:
        """A new catalog, or None when the last one handed out is still right."""
        with self._lock:
            now = time.monotonic()
            generation = self._store.generation
            if generation == self._generation and now - self._polled < self._poll_seconds:
                return None
            self._polled = now
            fingerprint = self._store.catalog_fingerprint()
            if generation == self._generation and fingerprint == self._fingerprint:
                return None
            catalog = build_catalog(self._store, self._templates)
            # Only now: a build that raised is tried again on the next call.
            self._generation, self._fingerprint = generation, fingerprint
            return catalog
