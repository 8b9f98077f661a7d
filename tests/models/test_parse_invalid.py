"""Invalid models: one case per rule, each asserting the exact path and the rule id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aislehub.models import ModelErrors, parse_models
from tests.models import samples
from tests.models.samples import THERMOSTAT, Json, interface

T = THERMOSTAT
TEMP = f"{T} / contents[0] (temperature)"
TARGET = f"{T} / contents[1] (targetTemperature)"
REPORT = f"{T} / contents[3] (getMaxMinReport)"


def errors(documents: list[Any]) -> list[tuple[str, str]]:
    with pytest.raises(ModelErrors) as caught:
        parse_models(documents)
    return [(e.path, e.rule) for e in caught.value.errors]


def thermo(edit: Callable[[Json], object], version: int = 2) -> list[Any]:
    doc = samples.thermostat(version)
    edit(doc)
    return [doc]


def content(doc: Json, index: int, **changes: Any) -> None:
    doc["contents"][index].update(changes)


def one(contents: list[Json], version: int = 2, **more: Any) -> list[Any]:
    return [interface("dtmi:ex:X;1", contents, version, **more)]


def prop(schema: Any, **more: Any) -> Json:
    return {"@type": "Property", "name": "p", "schema": schema} | more


def enum(values: list[Json], value_schema: str = "integer") -> Json:
    return {"@type": "Enum", "valueSchema": value_schema, "enumValues": values}


def nested_arrays(levels: int) -> Any:
    schema: Any = "boolean"
    for _ in range(levels):
        schema = {"@type": "Array", "elementSchema": schema}
    return schema


X = "dtmi:ex:X;1"
P = f"{X} / contents[0] (p)"

CASES: list[tuple[str, list[Any], str, str]] = [
    # identifiers (v2/v3 §Digital Twin Model Identifier)
    (
        "dtmi-no-version",
        thermo(lambda d: d.update({"@id": "dtmi:com:example:Thermostat"})),
        "dtmi:com:example:Thermostat / @id",
        "dtmi-syntax",
    ),
    (
        "dtmi-leading-zero",
        thermo(lambda d: d.update({"@id": "dtmi:ex:T;01"})),
        "dtmi:ex:T;01 / @id",
        "dtmi-syntax",
    ),
    (
        "dtmi-digit-segment",
        thermo(lambda d: d.update({"@id": "dtmi:1ex:T;1"})),
        "dtmi:1ex:T;1 / @id",
        "dtmi-syntax",
    ),
    (
        "dtmi-trailing-underscore",
        thermo(lambda d: d.update({"@id": "dtmi:ex_:T;1"})),
        "dtmi:ex_:T;1 / @id",
        "dtmi-syntax",
    ),
    (
        "dtmi-system-segment",
        thermo(lambda d: d.update({"@id": "dtmi:_ex:T;1"})),
        "dtmi:_ex:T;1 / @id",
        "dtmi-syntax",
    ),
    (
        "dtmi-reserved",
        thermo(lambda d: d.update({"@id": "dtmi:dtdl:mine;1"})),
        "dtmi:dtdl:mine;1 / @id",
        "dtmi-reserved",
    ),
    (
        "dtmi-too-long",
        thermo(lambda d: d.update({"@id": "dtmi:" + "a" * 124 + ";1"})),
        "dtmi:" + "a" * 124 + ";1 / @id",
        "dtmi-length",
    ),
    ("id-missing", thermo(lambda d: d.pop("@id")), "documents[0]", "id-required"),
    ("id-duplicate", [samples.thermostat(), samples.thermostat()], f"{T} / @id", "id-duplicate"),
    (
        "relationship-target",
        one([{"@type": "Relationship", "name": "r", "target": "room"}]),
        f"{X} / contents[0] (r) / target",
        "dtmi-syntax",
    ),
    # documents and contexts (v2 §Context, v3 Spec §Context, §DTDL element)
    ("document-not-object", [42], "documents[0]", "document-shape"),
    ("document-not-json", ["{nope"], "documents[0]", "document-shape"),
    (
        "top-level-not-interface",
        [
            {
                "@context": "dtmi:dtdl:context;2",
                "@id": "dtmi:ex:E;1",
                "@type": "Enum",
                "valueSchema": "integer",
            }
        ],
        "dtmi:ex:E;1",
        "top-level-interface",
    ),
    ("context-missing", thermo(lambda d: d.pop("@context")), T, "context"),
    (
        "context-version",
        thermo(lambda d: d.update({"@context": "dtmi:dtdl:context;4"})),
        f"{T} / @context",
        "context",
    ),
    (
        "context-not-dtmi",
        thermo(
            lambda d: d.update({"@context": ["dtmi:dtdl:context;2", "https://example.com/ctx"]})
        ),
        f"{T} / @context",
        "context",
    ),
    # @type and members
    (
        "type-unknown",
        thermo(lambda d: content(d, 0, **{"@type": "Telemetri"})),
        f"{TEMP} / @type",
        "type-class",
    ),
    (
        "type-two-classes",
        thermo(lambda d: content(d, 0, **{"@type": ["Telemetry", "Property"]})),
        f"{TEMP} / @type",
        "type-class",
    ),
    ("type-missing", thermo(lambda d: d["contents"][0].pop("@type")), TEMP, "type-required"),
    (
        "type-colon-v3",
        thermo(lambda d: content(d, 0, **{"@type": ["Telemetry", "a:b"]}), 3),
        f"{TEMP} / @type",
        "type-syntax",
    ),
    (
        "v3-request-payload-type",
        thermo(lambda d: d["contents"][3]["request"].update({"@type": "CommandPayload"}), 3),
        f"{REPORT} / request / @type",
        "type-class",
    ),
    (
        "name-missing",
        thermo(lambda d: d["contents"][0].pop("name")),
        f"{T} / contents[0]",
        "member-required",
    ),
    (
        "schema-missing",
        thermo(lambda d: d["contents"][2].pop("schema")),
        f"{T} / contents[2] (maxTempSinceLastReboot)",
        "member-required",
    ),
    (
        "writable-on-telemetry",
        thermo(lambda d: content(d, 0, writable=True)),
        f"{TEMP} / writable",
        "member-undefined",
    ),
    (
        "undefined-member",
        one([prop("string", brand="Honeywell")]),
        f"{P} / brand",
        "member-undefined",
    ),
    (
        "writable-not-boolean",
        thermo(lambda d: content(d, 1, writable="yes")),
        f"{TARGET} / writable",
        "member-type",
    ),
    ("keyword-v3", thermo(lambda d: content(d, 0, **{"@foo": 1}), 3), f"{TEMP} / @foo", "keyword"),
    (
        "command-type",
        thermo(lambda d: content(d, 3, commandType="sometimes")),
        f"{REPORT} / commandType",
        "command-type",
    ),
    # names (v2/v3 §<class> name)
    (
        "name-dash",
        thermo(lambda d: content(d, 1, name="target-temp")),
        f"{T} / contents[1] (target-temp) / name",
        "name-pattern",
    ),
    (
        "name-digit-first",
        one([prop("string", name="1st")]),
        f"{X} / contents[0] (1st) / name",
        "name-pattern",
    ),
    (
        "name-too-long-v2",
        one([prop("string", name="n" * 65)]),
        f"{X} / contents[0] ({'n' * 65}) / name",
        "name-length",
    ),
    (
        "name-duplicate",
        thermo(lambda d: content(d, 2, name="targetTemperature")),
        f"{T} / contents[2] (targetTemperature) / name",
        "name-unique",
    ),
    (
        "field-duplicate",
        one(
            [
                prop(
                    {
                        "@type": "Object",
                        "fields": [
                            {"name": "a", "schema": "long"},
                            {"name": "a", "schema": "long"},
                        ],
                    }
                )
            ]
        ),
        f"{P} / schema / fields[1] (a) / name",
        "name-unique",
    ),
    # localizable strings
    (
        "display-name-too-long",
        thermo(lambda d: d.update({"displayName": "x" * 65})),
        f"{T} / displayName",
        "text",
    ),
    (
        "display-name-language",
        thermo(lambda d: d.update({"displayName": {"en us": "x"}})),
        f"{T} / displayName",
        "text",
    ),
    # schemas
    (
        "schema-typo",
        thermo(lambda d: content(d, 2, schema="dobule")),
        f"{T} / contents[2] (maxTempSinceLastReboot) / schema",
        "schema-unknown",
    ),
    ("schema-unresolved", one([prop("dtmi:ex:Missing;1")]), f"{P} / schema", "schema-unresolved"),
    (
        "schema-interface",
        one([prop({"@type": "Interface", "@id": "dtmi:ex:I;1"})]),
        f"{P} / schema",
        "schema-class",
    ),
    ("geopoint-without-context", one([prop("geopoint")]), f"{P} / schema", "schema-unknown"),
    (
        "schema-depth",
        one([{"@type": "Telemetry", "name": "t", "schema": nested_arrays(6)}]),
        f"{X} / contents[0] (t) / schema",
        "schema-depth",
    ),
    (
        "schema-cycle",
        one(
            [prop("dtmi:ex:Node;1")],
            schemas=[
                {
                    "@id": "dtmi:ex:Node;1",
                    "@type": "Object",
                    "fields": [{"name": "next", "schema": "dtmi:ex:Node;1"}],
                }
            ],
        ),
        f"{X} / schemas[0] / fields[0] (next) / schema",
        "schema-cycle",
    ),
    (
        "reusable-schema-without-id",
        one([], schemas=[nested_arrays(1)]),
        f"{X} / schemas[0]",
        "id-required",
    ),
    ("property-array-v2", one([prop(nested_arrays(1))]), f"{P} / schema", "property-array"),
    ("property-geo-v2", one([prop("point")]), f"{P} / schema", "property-array"),
    (
        "map-key-not-string",
        one(
            [
                prop(
                    {
                        "@type": "Map",
                        "mapKey": {"name": "k", "schema": "integer"},
                        "mapValue": {"name": "v", "schema": "string"},
                    }
                )
            ]
        ),
        f"{P} / schema / mapKey / schema",
        "map-key",
    ),
    (
        "fields-v2-max-30",
        one(
            [
                prop(
                    {
                        "@type": "Object",
                        "fields": [{"name": f"f{i}", "schema": "long"} for i in range(31)],
                    }
                )
            ]
        ),
        f"{P} / schema / fields",
        "set-size",
    ),
    (
        "object-without-fields-v2",
        one([prop({"@type": "Object"})]),
        f"{P} / schema",
        "member-required",
    ),
    # enums (v2/v3 §Enum, §EnumValue)
    (
        "enum-duplicate-value",
        one([prop(enum([{"name": "a", "enumValue": 1}, {"name": "b", "enumValue": 1}]))]),
        f"{P} / schema / enumValues[1] (b) / enumValue",
        "enum-value",
    ),
    (
        "enum-duplicate-name",
        one([prop(enum([{"name": "a", "enumValue": 1}, {"name": "a", "enumValue": 2}]))]),
        f"{P} / schema / enumValues[1] (a) / name",
        "name-unique",
    ),
    (
        "enum-value-type",
        one([prop(enum([{"name": "a", "enumValue": "one"}]))]),
        f"{P} / schema / enumValues[0] (a) / enumValue",
        "enum-value",
    ),
    (
        "enum-value-schema",
        one([prop(enum([{"name": "a", "enumValue": 1.5}], "double"))]),
        f"{P} / schema / valueSchema",
        "enum-value-schema",
    ),
    ("enum-without-values-v2", one([prop(enum([]))]), f"{P} / schema", "member-required"),
    # semantic types and units (v2 §Semantic Type, QuantitativeTypes v1)
    (
        "unit-without-semantic-type",
        thermo(lambda d: content(d, 0, **{"@type": "Telemetry"})),
        f"{TEMP} / unit",
        "unit-without-semantic-type",
    ),
    (
        "unit-of-wrong-type",
        thermo(lambda d: content(d, 0, unit="kibibyte")),
        f"{TEMP} / unit",
        "semantic-unit",
    ),
    ("unit-missing", thermo(lambda d: d["contents"][0].pop("unit")), TEMP, "semantic-unit"),
    (
        "semantic-schema-not-numeric",
        thermo(lambda d: content(d, 0, schema="string")),
        f"{TEMP} / schema",
        "semantic-schema",
    ),
    (
        "semantic-type-without-context-v3",
        thermo(lambda d: d.update({"@context": "dtmi:dtdl:context;3"}), 3),
        f"{TEMP} / @type",
        "semantic-context",
    ),
    # relationships and commands
    (
        "min-multiplicity",
        one([{"@type": "Relationship", "name": "r", "minMultiplicity": 1}]),
        f"{X} / contents[0] (r) / minMultiplicity",
        "multiplicity",
    ),
    (
        "max-multiplicity-v2",
        one([{"@type": "Relationship", "name": "r", "maxMultiplicity": 501}]),
        f"{X} / contents[0] (r) / maxMultiplicity",
        "multiplicity",
    ),
    (
        "request-not-object",
        thermo(lambda d: content(d, 3, request="dateTime")),
        f"{REPORT} / request",
        "member-type",
    ),
    # limits (v2 §Interface)
    (
        "contents-v2-max-300",
        one([prop("long", name=f"p{i}") for i in range(301)]),
        f"{X} / contents",
        "contents-count",
    ),
]


@pytest.mark.parametrize(
    ("documents", "path", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(documents: list[Any], path: str, rule: str) -> None:
    found = errors(documents)
    assert (path, rule) in found, found
    assert {r for _, r in found} == {rule}, found


def test_every_rule_has_a_case_or_a_resolve_test() -> None:
    from aislehub.models.rules import RULES
    from tests.models.test_resolve import RESOLVE_RULES

    covered = {c[3] for c in CASES} | RESOLVE_RULES | {"template"}
    assert set(RULES) - covered == set()


def test_all_errors_of_a_document_set_are_collected() -> None:
    doc = samples.thermostat()
    content(doc, 0, writable=True)
    content(doc, 1, name="bad-name")
    content(doc, 2, schema="dobule")
    other = interface("dtmi:ex:Y;1", [prop("dtmi:ex:Missing;1")])
    found = errors([doc, other, 7])
    assert len(found) == 5
    assert {r for _, r in found} == {
        "member-undefined",
        "name-pattern",
        "schema-unknown",
        "schema-unresolved",
        "document-shape",
    }


def test_error_text_names_path_rule_and_spec() -> None:
    with pytest.raises(ModelErrors) as caught:
        parse_models(thermo(lambda d: content(d, 1, name="target-temp")))
    error = caught.value.errors[0]
    assert error.spec.startswith("v2/v3 §<class> name")
    assert str(error).startswith(f"{T} / contents[1] (target-temp) / name: name 'target-temp'")
    assert "[name-pattern;" in str(caught.value)
    assert caught.value.rules() == {"name-pattern"}


def test_v3_limits_are_wider() -> None:
    long_name = [prop("string", name="n" * 65)]
    array_property = [prop(nested_arrays(5))]
    for contents in (long_name, array_property):
        parse_models(one(contents, version=3))
