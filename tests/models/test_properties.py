"""Property tests: ``validate_value`` never raises and accepts what a schema generates;
``parse_models`` raises nothing but ``ModelErrors``, whatever a document holds."""

from __future__ import annotations

import contextlib
import copy
import json
import string
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aislehub.models import (
    ArraySchema,
    EnumSchema,
    EnumValue,
    Field,
    GeoSchema,
    MapSchema,
    ModelErrors,
    ObjectSchema,
    Primitive,
    Schema,
    parse_models,
    validate_value,
)
from aislehub.models.dialects import PRIMITIVES
from tests.models import samples

FAST = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
names = st.text(string.ascii_letters, min_size=1, max_size=8)


@st.composite
def enums(draw: st.DrawFn) -> EnumSchema:
    if draw(st.booleans()):
        values: list[Any] = draw(
            st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4, unique=True)
        )
        kind = "integer"
    else:
        values, kind = (
            draw(st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True)),
            "string",
        )
    labels = draw(st.lists(names, min_size=len(values), max_size=len(values), unique=True))
    return EnumSchema(kind, tuple(EnumValue(n, v) for n, v in zip(labels, values, strict=True)))


def _objects(children: st.SearchStrategy[Schema]) -> st.SearchStrategy[Schema]:
    fields = st.lists(st.tuples(names, children), max_size=4, unique_by=lambda pair: pair[0])
    return fields.map(lambda pairs: ObjectSchema(tuple(Field(n, s) for n, s in pairs)))


leaves = (
    st.sampled_from(PRIMITIVES).map(Primitive)
    | st.sampled_from(["point", "geopoint", "lineString", "multiPoint"]).map(GeoSchema)
    | enums()
)
schemas: st.SearchStrategy[Schema] = st.recursive(
    leaves,
    lambda children: (
        children.map(ArraySchema)
        | children.map(lambda value: MapSchema("key", value))
        | _objects(children)
    ),
    max_leaves=6,
)

positions = st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(list)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))]
)
_PRIMITIVE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "boolean": st.booleans(),
    "integer": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "string": st.text(),
    "date": st.dates().map(lambda d: d.isoformat()),
    "time": st.times().map(lambda t: t.isoformat()),
    "dateTime": st.datetimes(timezones=zones).map(lambda d: d.isoformat()),
    "duration": st.tuples(st.integers(0, 99), st.integers(0, 23), st.integers(0, 59)).map(
        lambda t: f"P{t[0]}DT{t[1]}H{t[2]}M"
    ),
}


def values_for(schema: Schema) -> st.SearchStrategy[Any]:
    match schema:
        case Primitive(name=name):
            return _PRIMITIVE_VALUES[name]
        case EnumSchema(values=values):
            return st.sampled_from([v.value for v in values])
        case ArraySchema(element=element):
            return st.lists(values_for(element), max_size=3)
        case MapSchema(value=value):
            return st.dictionaries(st.text(max_size=5), values_for(value), max_size=3)
        case ObjectSchema(fields=fields):
            return st.fixed_dictionaries(
                {}, optional={f.name: values_for(f.schema) for f in fields}
            )
        case GeoSchema(kind="lineString"):
            return st.lists(positions, min_size=2, max_size=4).map(
                lambda c: {"type": "LineString", "coordinates": c}
            )
        case GeoSchema(kind="multiPoint"):
            return st.lists(positions, min_size=1, max_size=4).map(
                lambda c: {"type": "MultiPoint", "coordinates": c}
            )
        case GeoSchema():
            return positions.map(lambda p: {"type": "Point", "coordinates": p}) | positions.map(
                lambda p: {"lon": p[0], "lat": p[1]}
            )
    raise AssertionError(schema)


@FAST
@given(schemas, json_values)
def test_random_json_never_raises(schema: Schema, value: Any) -> None:
    result = validate_value(schema, value)
    assert all(isinstance(message, str) and message.startswith("$") for message in result)


@FAST
@given(schemas.flatmap(lambda s: st.tuples(st.just(s), values_for(s))))
def test_generated_values_are_valid(pair: tuple[Schema, Any]) -> None:
    schema, value = pair
    assert validate_value(schema, value) == []
    assert validate_value(schema, json.loads(json.dumps(value))) == []  # and after the wire


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found += _paths(child, (*path, key))
    return found


SAMPLE = samples.controller_set(3)
SAMPLE_PATHS = [p for p in _paths(SAMPLE) if len(p) > 1]


@FAST
@given(st.sampled_from(SAMPLE_PATHS), json_values | st.text(string.printable, max_size=12))
def test_parser_only_raises_model_errors(path: tuple[Any, ...], replacement: Any) -> None:
    documents = copy.deepcopy(SAMPLE)
    parent: Any = documents
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = replacement
    try:
        parse_models(documents)
    except ModelErrors as caught:
        assert caught.errors and all(e.path and e.rule for e in caught.errors)


@FAST
@given(json_values)
def test_random_documents_only_raise_model_errors(document: Any) -> None:
    with contextlib.suppress(ModelErrors):
        parse_models([document])
