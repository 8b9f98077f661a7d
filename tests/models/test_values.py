"""``validate_value`` for every schema kind, plus property tests."""

from __future__ import annotations

from typing import Any

import pytest

from aislehub.models import (
    ArraySchema,
    EnumSchema,
    EnumValue,
    Field,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
    Schema,
    parse_models,
    validate_value,
)
from tests.models import samples

P = Primitive
STATE = EnumSchema("integer", (EnumValue("off", 0), EnumValue("on", 1)))
COLOUR = EnumSchema("string", (EnumValue("red", "r"), EnumValue("green", "g")))
REPORT = ObjectSchema((Field("maxTemp", P("double")), Field("startTime", P("dateTime"))))

VALID: list[tuple[Schema, Any]] = [
    (P("boolean"), True),
    (P("integer"), -(2**31)),
    (P("integer"), 2**31 - 1),
    (P("long"), 2**63 - 1),
    (P("double"), 21.5),
    (P("double"), 21),  # a JSON integer is a double
    (P("float"), 3.4e38),
    (P("string"), ""),
    (P("date"), "2024-02-29"),
    (P("time"), "23:59:60.5"),  # RFC 3339 §5.6: leap second
    (P("time"), "08:00:00+01:00"),
    (P("dateTime"), "2024-02-29T13:45:00.123Z"),
    (P("dateTime"), "2024-02-29t13:45:00-08:00"),
    (P("duration"), "P1DT2H"),
    (P("duration"), "PT0.5S"),
    (P("duration"), "P3W"),
    (STATE, 1),
    (COLOUR, "g"),
    (REPORT, {"maxTemp": 30, "startTime": "2024-01-01T00:00:00Z"}),
    (REPORT, {}),  # every field is optional
    (MapSchema("module", P("string")), {"moduleA": "running", "odd key": "stopped"}),
    (ArraySchema(P("boolean")), [True, False]),
    (ArraySchema(ArraySchema(STATE)), [[0, 1], []]),
    (GeoSchema("point"), {"type": "Point", "coordinates": [-122.128, 47.643]}),
    (GeoSchema("point"), {"lat": 47.643, "lon": -122.128, "alt": 12}),  # IoT Central legacy
    (GeoSchema("geopoint"), {"lat": 47.643, "lon": -122.128}),
    (GeoSchema("geopoint"), {"type": "Point", "coordinates": [1, 2, 3]}),
    (GeoSchema("lineString"), {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
    (GeoSchema("multiPoint"), {"type": "MultiPoint", "coordinates": [[0, 0]]}),
    (GeoSchema("polygon"), {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
    (GeoSchema("multiLineString"), {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]]]}),
    (
        GeoSchema("multiPolygon"),
        {
            "type": "MultiPolygon",
            "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]],
            "bbox": [0, 0, 1, 1],
        },
    ),
]


@pytest.mark.parametrize(("schema", "value"), VALID)
def test_valid(schema: Schema, value: Any) -> None:
    assert validate_value(schema, value) == []


INVALID: list[tuple[Schema, Any, str]] = [
    (P("boolean"), 1, "$: expected boolean, got integer"),
    (P("integer"), True, "$: expected integer, got boolean"),
    (P("integer"), 2.0, "$: expected integer, got number"),
    (P("integer"), 2**31, "$: 2147483648 is out of range for integer"),
    (P("long"), 2**63, "$: 9223372036854775808 is out of range for long"),
    (P("double"), False, "$: expected double, got boolean"),
    (P("double"), "1.5", "$: expected double, got string"),
    (P("double"), float("nan"), "$: nan is not a finite double"),
    (P("double"), 10**400, "is out of range for double"),
    (P("float"), 1e39, "$: 1e+39 is out of range for float"),
    (P("string"), None, "$: expected string, got null"),
    (P("date"), "2023-02-29", "$: '2023-02-29' is not a valid date"),
    (P("time"), "24:00:00", "is not a valid time"),
    (P("dateTime"), "2024-01-01T00:00:00", "is not a valid dateTime"),  # RFC 3339: offset
    (P("dateTime"), "2024-01-01 00:00:00Z", "is not a valid dateTime"),
    (P("duration"), "P", "is not a valid duration"),
    (P("duration"), "PT", "is not a valid duration"),
    (P("duration"), "1D", "is not a valid duration"),
    (STATE, 2, "$: 2 is not one of the enum values (off=0, on=1)"),
    (STATE, "on", "$: expected integer, got string"),
    (COLOUR, "blue", "$: 'blue' is not one of the enum values"),
    (REPORT, {"maxTemp": "hot"}, "$.maxTemp: expected double, got string"),
    (REPORT, {"extra": 1}, "$.extra: unknown field (not in the schema)"),
    (REPORT, [1], "$: expected object, got array"),
    (MapSchema("k", P("long")), {"a b": "x"}, '$["a b"]: expected long, got string'),
    (MapSchema("k", P("long")), [], "$: expected map (object), got array"),
    (ArraySchema(P("string")), ["a", 1], "$[1]: expected string, got integer"),
    (ArraySchema(P("string")), "abc", "$: expected array, got string"),
    (GeoSchema("point"), {"type": "Point", "coordinates": [200, 0]}, "outside longitude"),
    (GeoSchema("point"), {"type": "Point", "coordinates": [True, 0]}, "a position is"),
    (GeoSchema("point"), {"type": "LineString", "coordinates": [0, 0]}, "expected GeoJSON type"),
    (GeoSchema("point"), {"lat": 91, "lon": 0}, "outside latitude"),
    (GeoSchema("point"), {"lat": 1}, 'expected {"type": "Point"'),
    (
        GeoSchema("polygon"),
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [2, 2]]]},
        "must end at its first position",
    ),
    (GeoSchema("lineString"), {"type": "LineString", "coordinates": [[0, 0]]}, "at least 2"),
    (GeoSchema("multiPoint"), {"type": "MultiPoint"}, "needs 'coordinates'"),
    (GeoSchema("geopoint"), "47,-122", "expected a GeoJSON Point object"),
]


@pytest.mark.parametrize(("schema", "value", "message"), INVALID)
def test_invalid(schema: Schema, value: Any, message: str) -> None:
    found = validate_value(schema, value)
    assert len(found) == 1 and message in found[0], found


def test_every_problem_is_reported_with_its_path() -> None:
    schema = ObjectSchema(
        (Field("a", ArraySchema(P("integer"))), Field("b", MapSchema("k", STATE)))
    )
    value = {"a": [1, "x", 3.5], "b": {"ok": 1, "bad": 7}, "c": None}
    assert validate_value(schema, value) == [
        "$.a[1]: expected integer, got string",
        "$.a[2]: expected integer, got number",
        "$.b.bad: 7 is not one of the enum values (off=0, on=1)",
        "$.c: unknown field (not in the schema)",
    ]


def test_values_against_a_parsed_model() -> None:
    model = parse_models(samples.controller_set()).root(samples.CONTROLLER)
    report = model.command("thermostat1", "getMaxMinReport")
    assert report is not None and report.response is not None and report.request is not None
    assert validate_value(report.request.schema, "2024-05-01T00:00:00Z") == []
    reply = {
        "maxTemp": 30.5,
        "minTemp": 18,
        "avgTemp": 22.1,
        "startTime": "2024-05-01T00:00:00Z",
        "endTime": "2024-05-01T06:00:00Z",
    }
    assert validate_value(report.response.schema, reply) == []
    reboot = model.command(None, "reboot")
    assert reboot is not None and reboot.request is not None
    assert validate_value(reboot.request.schema, 5.5) != []
