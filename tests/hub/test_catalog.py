"""The typing catalog: templates flattened to the kinds the store checks, and when it is
rebuilt (on this process's writes at once, on another process's within the poll)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aislehub.hub.catalog import CatalogSource, build_catalog, schema_kind
from aislehub.hub.hub import DeviceHub
from aislehub.metrics import Metrics
from aislehub.models import (
    ArraySchema,
    EnumSchema,
    EnumValue,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
)
from aislehub.store.metadata import App, Device, MetadataStore
from tests.api.template_samples import CAPABILITY_MODEL, CONTROLLER, controller_template


@pytest.fixture
def hub(tmp_path: Path) -> DeviceHub:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    store.create_app(App("app", "App", "app", "0ne00000001"))
    return DeviceHub(store, Metrics(), "hub.example")


def test_schema_kinds() -> None:
    assert schema_kind(Primitive("dateTime")) == ("dateTime", None)
    on_off = EnumSchema("string", (EnumValue("on", "on"), EnumValue("off", "off")))
    assert schema_kind(on_off) == ("enum", ['"on"', '"off"'])
    assert schema_kind(EnumSchema("integer", (EnumValue("one", 1),))) == ("enum", ["1"])
    assert schema_kind(ObjectSchema(())) == ("object", None)
    assert schema_kind(MapSchema("k", Primitive("double"))) == ("map", None)
    assert schema_kind(ArraySchema(Primitive("double"))) == ("array", None)
    assert schema_kind(GeoSchema("point")) == ("geopoint", None)
    assert schema_kind(GeoSchema("geopoint")) == ("geopoint", None)
    assert schema_kind(GeoSchema("polygon")) == ("geometry", None)


def test_catalog_of_a_multi_component_template(hub: DeviceHub) -> None:
    hub.templates.publish("app", CONTROLLER, controller_template())
    hub.store.put_device(Device("app", "t1", "t1", template=CONTROLLER))
    hub.store.put_device(Device("app", "plain", "plain"))
    catalog = build_catalog(hub.store, hub.templates)
    devices = {r["device_id"]: r["template_id"] for r in catalog.devices.to_pylist()}
    assert devices == {"t1": CONTROLLER, "plain": None}
    fields = {(r["component"], r["name"]): r for r in catalog.fields.to_pylist()}
    assert sorted(fields) == [
        ("", "workingSet"),
        ("thermostat1", "temperature"),
        ("thermostat2", "temperature"),
    ]
    assert fields["", "workingSet"]["unit"] == "kibibyte"
    assert fields["", "workingSet"]["semantic_type"] == "DataSize"
    assert fields["thermostat2", "temperature"]["kind"] == "double"
    assert fields["thermostat2", "temperature"]["unit"] == "degreeCelsius"


def test_source_rebuilds_only_after_a_change(hub: DeviceHub) -> None:
    source = CatalogSource(hub.store, hub.templates, poll_seconds=3600)
    first = source()
    assert first is not None and first.devices.num_rows == 0
    assert source() is None
    hub.templates.publish("app", CONTROLLER, controller_template())  # this process: at once
    published = source()
    assert published is not None and published.fields.num_rows == 3
    device = hub.store.put_device(Device("app", "d1", "d1"))
    hub.announce_model(device, CAPABILITY_MODEL)  # auto-assignment types the next batch
    assigned = source()
    assert assigned is not None
    assert assigned.devices.to_pylist()[0]["template_id"] == CONTROLLER
    assert source() is None


def test_source_sees_another_process_write(hub: DeviceHub, tmp_path: Path) -> None:
    source = CatalogSource(hub.store, hub.templates, poll_seconds=0)
    assert source() is not None
    other = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")  # e.g. the CLI
    try:
        assert source() is None
        other.put_device(Device("app", "cli-made", "cli-made"))
        fresh = source()
        assert fresh is not None and fresh.devices.num_rows == 1
    finally:
        other.close()


def test_edge_modules_of_a_template(hub: DeviceHub) -> None:
    body = controller_template()
    climate = {
        "@id": "dtmi:aislehub:test:Climate;1",
        "@type": "Interface",
        "contents": [{"@type": "Telemetry", "name": "h", "schema": "double"}],
    }
    sensor = {
        "@id": "dtmi:aislehub:test:Sensor;1",
        "@type": "Interface",
        "contents": [
            {"@type": "Telemetry", "name": "t", "schema": "integer"},
            {"@type": "Component", "name": "climate", "schema": climate},
        ],
    }
    module = {"@type": ["Relationship", "EdgeModule"], "name": "sensor", "target": [sensor]}
    body["capabilityModel"]["contents"].append(module)
    hub.templates.publish("app", CONTROLLER, body)
    fields = build_catalog(hub.store, hub.templates).fields.to_pylist()
    found = {(r["component"], r["name"], r["kind"]) for r in fields}
    assert {("sensor/", "t", "integer"), ("sensor/climate", "h", "double")} <= found
