"""Valid models parse into the typed model, in DTDL v2 and v3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aislehub.models import (
    ArraySchema,
    EnumSchema,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
    Property,
    Relationship,
    ResolvedInterface,
    Schema,
    Telemetry,
    parse_models,
)
from tests.models import samples
from tests.models.samples import CONTROLLER, DEVICE_INFO, THERMOSTAT, Json, interface


@pytest.mark.parametrize("version", [2, 3])
def test_temperature_controller(version: int) -> None:
    model = parse_models(samples.controller_set(version)).root(CONTROLLER)

    assert list(model.components) == ["thermostat1", "thermostat2", "deviceInformation"]
    working_set = model.telemetry(None, "workingSet")
    assert working_set is not None
    assert (working_set.semantic_type, working_set.unit) == ("DataSize", "kibibyte")
    reboot = model.command(None, "reboot")
    assert reboot is not None and reboot.request is not None and reboot.response is None
    assert (reboot.request.name, reboot.request.schema) == ("delay", Primitive("integer"))
    serial = model.property(None, "serialNumber")
    assert serial is not None and not serial.writable


@pytest.mark.parametrize("version", [2, 3])
def test_thermostat_component(version: int) -> None:
    model = parse_models(samples.controller_set(version)).root(CONTROLLER)

    target = model.property("thermostat1", "targetTemperature")
    assert target is not None and target.writable
    assert (target.semantic_type, target.unit, target.schema) == (
        "Temperature",
        "degreeCelsius",
        Primitive("double"),
    )
    assert (
        target.display_name is not None and target.display_name.get("it") == "Temperatura obiettivo"
    )
    report = model.command("thermostat2", "getMaxMinReport")
    assert report is not None and report.request is not None and report.response is not None
    assert report.request.schema == Primitive("dateTime")
    assert isinstance(report.response.schema, ObjectSchema)
    assert [f.name for f in report.response.schema.fields][:2] == ["maxTemp", "minTemp"]
    assert model.telemetry("deviceInformation", "temperature") is None
    assert model.property("nope", "targetTemperature") is None


def schema_of(view: ResolvedInterface, name: str) -> Schema:
    found = view.content(name)
    assert isinstance(found, Telemetry | Property), found
    return found.schema


def test_lookups_tell_kinds_apart() -> None:
    model = parse_models([samples.thermostat()]).root(THERMOSTAT)
    assert model.telemetry(None, "targetTemperature") is None
    assert model.property(None, "temperature") is None
    assert model.command(None, "getMaxMinReport") is not None
    assert len(model.contents) == 4 and model.id == THERMOSTAT


def test_documents_as_json_text_and_arrays() -> None:
    text = json.dumps(samples.controller_set())
    models = parse_models([text])
    assert set(models) == {CONTROLLER, THERMOSTAT, DEVICE_INFO}
    assert models.interfaces[THERMOSTAT].dtdl_version == 2


def _chain(extends: Any) -> list[dict[str, Any]]:
    base = interface("dtmi:ex:Base;1", [{"@type": "Property", "name": "a", "schema": "string"}])
    other = interface("dtmi:ex:Other;1", [{"@type": "Telemetry", "name": "b", "schema": "long"}])
    child = interface("dtmi:ex:Child;1", [{"@type": "Command", "name": "c"}], extends=extends)
    return [child, base, other]


@pytest.mark.parametrize(
    "extends", ["dtmi:ex:Base;1", ["dtmi:ex:Base;1", "dtmi:ex:Other;1"]], ids=["one", "list"]
)
def test_extends_by_id(extends: Any) -> None:
    view = parse_models(_chain(extends)).resolved("dtmi:ex:Child;1")
    assert next(c.name for c in view.contents) == "a"
    assert view.property("a") is not None and view.command("c") is not None
    assert view.interface.extends == tuple(extends if isinstance(extends, list) else [extends])


def test_extends_inline_interface_and_diamond() -> None:
    root = {
        "@type": "Interface",
        "@id": "dtmi:ex:Root;1",
        "contents": {"@type": "Property", "name": "root", "schema": "boolean"},
    }
    left = {"@type": "Interface", "@id": "dtmi:ex:Left;1", "extends": "dtmi:ex:Root;1"}
    doc = interface("dtmi:ex:Diamond;1", [], extends=[left, "dtmi:ex:Right;1"])
    right = interface("dtmi:ex:Right;1", [], extends=root)
    models = parse_models([doc, right])
    assert [c.name for c in models.resolved("dtmi:ex:Diamond;1").contents] == ["root"]
    assert "dtmi:ex:Left;1" in models and "dtmi:ex:Root;1" in models


def test_inline_component_interface() -> None:
    inline = {
        "@type": "Interface",
        "@id": "dtmi:ex:Inner;1",
        "contents": [{"@type": "Telemetry", "name": "level", "schema": "float"}],
    }
    doc = interface("dtmi:ex:Outer;1", [{"@type": "Component", "name": "tank", "schema": inline}])
    model = parse_models([doc]).root("dtmi:ex:Outer;1")
    assert model.telemetry("tank", "level") is not None


@pytest.mark.parametrize("version", [2, 3])
def test_reusable_schemas_enums_maps_arrays(version: int) -> None:
    state = {
        "@id": "dtmi:ex:Kit:state;1",
        "@type": "Enum",
        "valueSchema": "integer",
        "enumValues": [
            {"name": "off", "enumValue": 0, "displayName": "Off"},
            {"name": "on", "enumValue": 1},
        ],
    }
    modules = {
        "@type": "Map",
        "mapKey": {"name": "module", "schema": "string"},
        "mapValue": {"name": "state", "schema": "dtmi:ex:Kit:state;1"},
    }
    contents: list[Json] = [
        {"@type": "Telemetry", "name": "state", "schema": "dtmi:ex:Kit:state;1"},
        {"@type": "Property", "name": "modules", "schema": modules, "writable": True},
        {
            "@type": "Telemetry",
            "name": "leds",
            "schema": {"@type": "Array", "elementSchema": "boolean"},
        },
    ]
    kit = parse_models([interface("dtmi:ex:Kit;1", contents, version, schemas=[state])])
    view = kit.resolved("dtmi:ex:Kit;1")
    enum = schema_of(view, "state")
    assert isinstance(enum, EnumSchema) and enum.id == "dtmi:ex:Kit:state;1"
    assert [(v.name, v.value) for v in enum.values] == [("off", 0), ("on", 1)]
    mapping = schema_of(view, "modules")
    assert isinstance(mapping, MapSchema) and mapping.value is enum and mapping.key == "module"
    leds = schema_of(view, "leds")
    assert leds == ArraySchema(Primitive("boolean"))
    assert kit.interfaces["dtmi:ex:Kit;1"].schemas == (enum,)


def test_geospatial_and_iot_central_schemas() -> None:
    contents: list[Json] = [
        {"@type": "Telemetry", "name": "location", "schema": "point"},
        {
            "@type": "Telemetry",
            "name": "route",
            "schema": "dtmi:standard:schema:geospatial:lineString;2",
        },
        {"@type": "Property", "name": "site", "schema": "geopoint"},
        {"@type": "Telemetry", "name": "accel", "schema": "vector"},
    ]
    doc = interface("dtmi:ex:Tracker;1", contents)
    doc["@context"] = ["dtmi:dtdl:context;2", "dtmi:iotcentral:context;2"]
    view = parse_models([doc]).resolved("dtmi:ex:Tracker;1")
    assert view.telemetry("location").schema == GeoSchema("point")  # type: ignore[union-attr]
    assert view.telemetry("route").schema == GeoSchema("lineString")  # type: ignore[union-attr]
    assert view.property("site").schema == GeoSchema("geopoint")  # type: ignore[union-attr]
    accel = schema_of(view, "accel")
    assert isinstance(accel, ObjectSchema) and [f.name for f in accel.fields] == ["x", "y", "z"]


def test_v3_allows_arrays_and_geo_in_properties_and_new_dtmi_forms() -> None:
    contents: list[Json] = [
        {
            "@type": "Property",
            "name": "tags",
            "schema": {"@type": "Array", "elementSchema": "string"},
        },
        {"@type": "Property", "name": "home", "schema": "point"},
    ]
    for iid in ("dtmi:ex:Shelf", "dtmi:ex:Shelf;2.1"):  # v3 §DTMI: no version, major.minor
        assert iid in parse_models([interface(iid, contents, version=3)])


def test_relationships_kept() -> None:
    rel = {
        "@type": "Relationship",
        "name": "cleanedBy",
        "target": "dtmi:ex:Cleaner;1",
        "minMultiplicity": 0,
        "maxMultiplicity": 3,
        "writable": True,
        "properties": [{"@type": "Property", "name": "lastCleaned", "schema": "dateTime"}],
    }
    view = parse_models([interface("dtmi:ex:Room;1", [rel])]).resolved("dtmi:ex:Room;1")
    found = view.relationship("cleanedBy")
    assert isinstance(found, Relationship)
    assert (found.target, found.min_multiplicity, found.max_multiplicity) == (
        "dtmi:ex:Cleaner;1",
        0,
        3,
    )
    assert found.writable and found.properties[0].schema == Primitive("dateTime")


def test_open_world_cotypes_allow_undefined_members() -> None:
    # v2 §Undefined co-types and properties: "Commercial" co-type permits "brand".
    prop = {
        "@type": ["Property", "Commercial"],
        "name": "setPoint",
        "schema": "double",
        "writable": True,
        "brand": "Honeywell",
    }
    view = parse_models([interface("dtmi:ex:Th;1", [prop])]).resolved("dtmi:ex:Th;1")
    found = view.property("setPoint")
    assert found is not None and found.cotypes == ("Commercial",)


def test_dtmi_spellings_of_terms_and_literals() -> None:
    tele = {
        "@type": ["dtmi:dtdl:class:Telemetry;2", "dtmi:standard:class:Temperature;2"],
        "name": {"@value": "t"},
        "schema": ["dtmi:dtdl:instance:Schema:double;2"],
        "unit": "dtmi:standard:unit:kelvin;2",
    }
    view = parse_models([interface("dtmi:ex:T;1", [tele])]).resolved("dtmi:ex:T;1")
    found = view.telemetry("t")
    assert found is not None and (found.semantic_type, found.unit) == ("Temperature", "kelvin")


def test_v2_component_in_v3_interface() -> None:
    # v3 Spec §Context: a v3 Interface may use a v2 Interface as a Component.
    later = interface(
        "dtmi:ex:Later;1",
        [{"@type": "Component", "name": "sub", "schema": "dtmi:ex:Earlier;1"}],
        version=3,
    )
    earlier = interface(
        "dtmi:ex:Earlier;1", [{"@type": "Property", "name": "d", "schema": "integer"}]
    )
    model = parse_models([later, earlier]).root("dtmi:ex:Later;1")
    assert model.property("sub", "d") is not None
    assert model.components["sub"].interface.dtdl_version == 2


def test_v3_quantitative_types_on_fields_and_payloads() -> None:
    # QuantitativeTypes v1 §Semantic type and unit examples: the "multimeter" Object.
    fields = [
        {
            "@type": ["Field", "Temperature"],
            "name": "thermometer",
            "schema": "double",
            "unit": "degreeCelsius",
        },
        {
            "@type": ["Field", "RelativeHumidity"],
            "name": "humidity",
            "schema": "integer",
            "unit": "percent",
        },
    ]
    setpoint = {
        "@type": ["CommandRequest", "Temperature"],
        "name": "target",
        "schema": "float",
        "unit": "kelvin",
    }
    contents: list[Json] = [
        {
            "@type": "Telemetry",
            "name": "multimeter",
            "schema": {"@type": "Object", "fields": fields},
        },
        {"@type": "Command", "name": "set", "request": setpoint},
    ]
    view = parse_models([interface("dtmi:ex:Sensor;1", contents, 3)]).resolved("dtmi:ex:Sensor;1")
    meter = schema_of(view, "multimeter")
    assert isinstance(meter, ObjectSchema)
    assert [(f.semantic_type, f.unit) for f in meter.fields] == [
        ("Temperature", "degreeCelsius"),
        ("RelativeHumidity", "percent"),
    ]
    command = view.command("set")
    assert command is not None and command.request is not None
    assert (command.request.semantic_type, command.request.unit) == ("Temperature", "kelvin")


def test_localizable_string_forms_and_comment() -> None:
    doc = interface(
        "dtmi:ex:L;1",
        [],
        displayName=[
            {"@value": "Shelf", "@language": "en"},
            {"@value": "Regal", "@language": "de"},
        ],
        comment="for authors only",
    )
    found = parse_models([doc]).interfaces["dtmi:ex:L;1"]
    assert found.display_name is not None and found.display_name.get("de") == "Regal"
    assert str(found.display_name) == "Shelf" and found.comment == "for authors only"
