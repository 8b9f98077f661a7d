"""Typed ingest: fields of a device with a template are checked in the store's batch write.

Runs on every telemetry backend (the conformance suite's fixtures); the kind checks are
compared with :func:`aislehub.models.values.validate_value`, the API's validator, so the
two never disagree on what a value of a primitive or enum schema is.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aislehub.models import EnumSchema, EnumValue, Primitive, Schema, validate_value
from aislehub.store.telemetry import (
    DEVICE_CATALOG_SCHEMA,
    TEMPLATE_FIELDS_SCHEMA,
    BatchCounts,
    Catalog,
    TelemetryStore,
)
from tests.store.test_telemetry_conformance import T0, Feed, open_store, store

__all__ = ["open_store", "store"]  # fixtures, re-used from the conformance suite

TEMPLATE = "dtmi:test:Cooler;1"


def catalog(fields: list[tuple[str, str, str, list[Any] | None]], **devices: str | None) -> Catalog:
    """``fields``: (component, name, kind, enum values); ``devices``: id → template."""
    device_rows = [
        {
            "app_id": "app",
            "device_id": device_id,
            "template_id": template,
            "provisioned": True,
            "simulated": False,
            "enabled": True,
        }
        for device_id, template in devices.items()
    ]
    field_rows = [
        {
            "app_id": "app",
            "template_id": TEMPLATE,
            "component": component,
            "name": name,
            "kind": kind,
            "enum_values": None if values is None else [orjson.dumps(v).decode() for v in values],
            "unit": "degreeCelsius" if name == "temp" else None,
            "semantic_type": None,
        }
        for component, name, kind, values in fields
    ]
    return Catalog(
        pa.Table.from_pylist(device_rows, schema=DEVICE_CATALOG_SCHEMA),
        pa.Table.from_pylist(field_rows, schema=TEMPLATE_FIELDS_SCHEMA),
    )


COOLER = [
    ("", "temp", "double", None),
    ("", "doorOpen", "boolean", None),
    ("", "mode", "enum", ["auto", "defrost"]),
    ("compressor", "power", "integer", None),
]


def test_typed_device_fields_are_checked(store: TelemetryStore) -> None:
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE, c2=None))
    feed = Feed()
    later = T0 + timedelta(seconds=1)
    batch, last = feed.batch(
        ("c1", T0, {"temp": 4.5, "doorOpen": False, "mode": "auto", "extra": 1}),
        ("c1", later, {"temp": "cold", "doorOpen": 1, "mode": "off"}),
        ("c2", T0, {"temp": "cold", "anything": 1}),  # no template: stored by JSON type
    )
    counts = store.write_batch("store", batch, last)
    assert counts == BatchCounts(
        3, number_rows=2, value_rows=3, unknown_fields=1, mistyped_fields=3
    )
    assert store.latest("app", "c1", "temp") == (4.5, T0)  # the mistyped one kept aside
    assert store.latest("app", "c1", "mode") == ("auto", T0)
    assert store.latest("app", "c1", "extra") is None
    assert store.latest("app", "c2", "temp") == ("cold", T0)
    kept = {(f.name, f.reason): f for f in store.unmodeled("app", "c1")}
    assert sorted(kept) == [
        ("doorOpen", "mistyped"),
        ("extra", "unknown"),
        ("mode", "mistyped"),
        ("temp", "mistyped"),
    ]
    assert kept["temp", "mistyped"].last_value == "cold"
    assert kept["temp", "mistyped"].last_ts == later
    assert kept["extra", "unknown"].count == 1
    assert store.unmodeled("app", "c2") == []


def test_component_chosen_by_sub(store: TelemetryStore) -> None:
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE))
    feed = Feed()
    batch, last = feed.batch(("c1", T0, {"power": 120, "temp": 3.0}), props={"$.sub": "compressor"})
    counts = store.write_batch("store", batch, last)
    assert counts == BatchCounts(1, number_rows=1, unknown_fields=1)
    assert store.latest("app", "c1", "power", component="compressor") == (120.0, T0)
    [kept] = store.unmodeled("app", "c1")
    assert (kept.component, kept.name, kept.reason) == ("compressor", "temp", "unknown")
    batch, last = feed.batch(("c1", T0, {"power": 1}), props={"$.sub": "fan"})
    assert store.write_batch("store", batch, last) == BatchCounts(1, unknown_fields=1)


def test_modules_are_not_typed_by_the_device_template(store: TelemetryStore) -> None:
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE))
    feed = Feed()
    batch, last = feed.batch(("c1", T0, {"temp": "x"}), module="camera")
    assert store.write_batch("store", batch, last) == BatchCounts(1, value_rows=1)
    assert store.latest("app", "c1", "temp", module_id="camera") == ("x", T0)


def test_a_new_catalog_types_the_next_batch(store: TelemetryStore) -> None:
    feed = Feed()
    store.sync_catalog(catalog(COOLER, c1=None))
    assert store.write_batch("store", *feed.batch(("c1", T0, {"temp": "hot"}))) == BatchCounts(
        1, value_rows=1
    )
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE))
    assert store.write_batch("store", *feed.batch(("c1", T0, {"temp": "hot"}))) == BatchCounts(
        1, mistyped_fields=1
    )
    store.sync_catalog(Catalog.empty())
    assert store.write_batch("store", *feed.batch(("c1", T0, {"temp": "hot"}))) == BatchCounts(
        1, value_rows=1
    )


def test_other_apps_devices_are_not_typed(store: TelemetryStore) -> None:
    store.sync_catalog(catalog(COOLER, c1=TEMPLATE))
    batch, last = Feed().batch(("c1", T0, {"temp": "hot"}), app="other")
    assert store.write_batch("store", batch, last) == BatchCounts(1, value_rows=1)


# -- each kind, against the API's validator ----------------------------------------------

CASES: list[tuple[str, list[Any] | None, list[Any], list[Any]]] = [
    # kind, enum values, values that fit, values that do not
    ("double", None, [1.5, 3, -0.0, 1e300], ["1", True, None, [1], {}]),
    ("float", None, [1.5, 3.4e38], [1e39, "x"]),
    ("integer", None, [3, -(2**31), 2**31 - 1], [3.5, 3.0, 2**31, "3", False]),
    ("long", None, [2**40, -(2**63), 2**63 - 1], [2**63, 1.5]),
    ("boolean", None, [True, False], [1, "true", None]),
    ("string", None, ["", "x", 'with "quotes"'], [1, None, ["x"]]),
    ("date", None, ["2024-01-02"], ["2024-1-2", "2024-01-02T00:00:00Z", 20240102]),
    ("time", None, ["12:00:00", "23:59:59.25"], ["12:00", "noon"]),
    (
        "dateTime",
        None,
        ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123+02:00"],
        ["2024-01-02 03:04:05", "2024-01-02", "yesterday"],
    ),
    ("duration", None, ["PT5M", "P1DT2H", "P2W", "PT0.5S"], ["P", "PT", "P1DT", "5 min"]),
    ("enum", ["on", "off"], ["on", "off"], ["ON", 1, None]),
    ("enum", [1, 2], [1, 2], [3, "1", 1.5]),
    ("object", None, [{}, {"a": 1}], [[1], "x"]),
    ("map", None, [{"k": "v"}], [[], 1]),
    ("array", None, [[], [1, "a"]], [{}, "[]"]),
    (
        "geopoint",
        None,
        [{"lat": 47.6, "lon": -122.1}, {"type": "Point", "coordinates": [-122.1, 47.6]}],
        [{"lat": "47"}, [47.6, -122.1], {"lon": 1}],
    ),
]


@pytest.mark.parametrize(("kind", "enum", "good", "bad"), CASES)
def test_each_kind(
    store: TelemetryStore, kind: str, enum: list[Any] | None, good: list[Any], bad: list[Any]
) -> None:
    store.sync_catalog(catalog([("", "v", kind, enum)], c1=TEMPLATE))
    feed = Feed()
    values = good + bad
    batch, last = feed.batch(
        *[("c1", T0 + timedelta(seconds=i), {"v": v}) for i, v in enumerate(values)]
    )
    counts = store.write_batch("store", batch, last)
    assert counts is not None
    assert counts.number_rows + counts.value_rows == len(good)
    kept = store.unmodeled("app", "c1")
    assert [(f.reason, f.count) for f in kept] == ([("mistyped", len(bad))] if bad else [])


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["2024-01-02", "12:00:00", "2024-01-02T03:04:05Z", "PT5M", "P", "on"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
_SCHEMAS: list[tuple[str, Schema]] = [
    (name, Primitive(name))
    for name in (
        "boolean",
        "date",
        "dateTime",
        "double",
        "duration",
        "float",
        "integer",
        "long",
        "string",
        "time",
    )
] + [
    ("enum", EnumSchema("string", (EnumValue("on", "on"), EnumValue("off", "off")))),
    ("enum", EnumSchema("integer", (EnumValue("one", 1), EnumValue("two", 2)))),
]


@pytest.fixture
def all_kinds(store: TelemetryStore) -> TelemetryStore:
    fields = [
        (
            "",
            f"v{i}",
            kind,
            [v.value for v in schema.values] if isinstance(schema, EnumSchema) else None,
        )
        for i, (kind, schema) in enumerate(_SCHEMAS)
    ]
    store.sync_catalog(catalog(fields, c1=TEMPLATE))
    return store


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_JSON, min_size=1, max_size=10))
def test_store_agrees_with_the_api_validator(all_kinds: TelemetryStore, values: list[Any]) -> None:
    store = all_kinds  # one store for every example: offsets and counts carry on
    before = {f.name: f.count for f in store.unmodeled("app", "c1")}
    feed = Feed()
    feed.offset = store.committed_offset("store")
    bodies = [json.dumps({f"v{i}": v for i in range(len(_SCHEMAS))}).encode() for v in values]
    store.write_batch("store", *feed.batch(*[("c1", T0, body) for body in bodies]))
    after = {f.name: f.count for f in store.unmodeled("app", "c1")}
    for i, (kind, schema) in enumerate(_SCHEMAS):
        name = f"v{i}"
        expected = sum(1 for v in values if validate_value(schema, v))
        assert after.get(name, 0) - before.get(name, 0) == expected, (kind, values)


def test_declared_modules_are_typed_by_their_interface(store: TelemetryStore) -> None:
    fields = [*COOLER, ("sensor/", "t", "double", None), ("sensor/climate", "h", "double", None)]
    store.sync_catalog(catalog(fields, c1=TEMPLATE))
    feed = Feed()
    batch, last = feed.batch(("c1", T0, {"t": "x", "temp": 1.0}), module="sensor")
    assert store.write_batch("store", batch, last) == BatchCounts(
        1, unknown_fields=1, mistyped_fields=1
    )
    batch, last = feed.batch(("c1", T0, {"h": 40}), module="sensor", props={"$.sub": "climate"})
    assert store.write_batch("store", batch, last) == BatchCounts(1, number_rows=1)
    assert store.latest("app", "c1", "h", component="climate", module_id="sensor") == (40.0, T0)
    batch, last = feed.batch(("c1", T0, {"t": "x"}), module="other")  # not declared
    assert store.write_batch("store", batch, last) == BatchCounts(1, value_rows=1)
    kept = {(f.module_id, f.name, f.reason) for f in store.unmodeled("app", "c1")}
    assert kept == {("sensor", "t", "mistyped"), ("sensor", "temp", "unknown")}
