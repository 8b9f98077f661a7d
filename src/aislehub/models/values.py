"""``validate_value``: does a JSON value (already decoded) fit a schema?

Used by typed ingest, writable properties and command payloads. Returns messages, each led by
the JSON path inside the value (``$.report.maxTemp: expected double, got string``); an empty
list means valid. It never raises, whatever the value.

Choices where DTDL is silent, following what IoT Central does:

* numbers: a JSON integer is a valid ``double``/``float``; a ``bool`` is never a number; an
  ``integer``/``long`` must be an integral JSON number (``3.0`` is not) within 4/8 bytes;
  ``double``/``float`` must be finite and within range.
* Object: every field is optional; a member the schema does not name is reported ("unknown
  field"), as IoT Central flags unmodeled data.
* ``null`` fits no schema (DTDL has no nullable); a twin patch's ``null`` (delete) is the twin
  layer's business, not this one's.
* geospatial: GeoJSON geometries (RFC 7946) with ``[lon, lat(, alt)]`` positions; ``point`` and
  IoT Central's ``geopoint`` also accept the legacy ``{"lat": …, "lon": …, "alt": …}`` object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from aislehub.models import temporal
from aislehub.models.elements import (
    ArraySchema,
    EnumSchema,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
    Schema,
)
from aislehub.models.geo import check_geo

_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_FLOAT_MAX = 3.4028234663852886e38  # IEEE 754 single precision
_TEXT_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": temporal.is_date,
    "time": temporal.is_time,
    "dateTime": temporal.is_date_time,
    "duration": temporal.is_duration,
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_value(schema: Schema, value: object) -> list[str]:
    """Messages for every way ``value`` does not fit ``schema``; empty when it fits."""
    errors: list[str] = []
    _check(schema, value, "$", errors)
    return errors


def _check(schema: Schema, value: object, path: str, out: list[str]) -> None:
    match schema:
        case Primitive(name=name):
            message = _primitive(name, value)
            if message:
                out.append(f"{path}: {message}")
        case EnumSchema():
            _enum(schema, value, path, out)
        case ObjectSchema():
            _object(schema, value, path, out)
        case MapSchema():
            _map(schema, value, path, out)
        case ArraySchema():
            _array(schema, value, path, out)
        case GeoSchema(kind=kind):
            _geo(kind, value, path, out)


def kind_of(value: object) -> str:
    """The JSON type of a value, as messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)


def _primitive(name: str, value: object) -> str | None:
    expected = f"expected {name}, got {kind_of(value)}"
    if name == "boolean":
        return None if isinstance(value, bool) else expected
    if name == "string":
        return None if isinstance(value, str) else expected
    if name in _RANGES:
        return _integral(name, value, expected)
    if name in ("double", "float"):
        return _real(name, value, expected)
    if not isinstance(value, str):
        return expected
    return None if _TEXT_FORMATS[name](value) else f"{value!r} is not a valid {name}"


def _integral(name: str, value: object, expected: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return expected
    low, high = _RANGES[name]
    return None if low <= value <= high else f"{value} is out of range for {name}"


def _real(name: str, value: object, expected: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return expected
    try:
        number = float(value)
    except OverflowError:
        return f"{value} is out of range for {name}"
    if not math.isfinite(number):
        return f"{value} is not a finite {name}"
    if name == "float" and abs(number) > _FLOAT_MAX:
        return f"{value} is out of range for float"
    return None


def _enum(schema: EnumSchema, value: object, path: str, out: list[str]) -> None:
    message = _primitive(schema.value_schema, value)
    if message:
        out.append(f"{path}: {message}")
        return
    allowed = [v.value for v in schema.values]
    if value not in allowed:
        names = ", ".join(f"{v.name}={v.value!r}" for v in schema.values)
        out.append(f"{path}: {value!r} is not one of the enum values ({names})")


def _object(schema: ObjectSchema, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, Mapping):
        out.append(f"{path}: expected object, got {kind_of(value)}")
        return
    for key, item in value.items():
        field = schema.field(key) if isinstance(key, str) else None
        if field is None:
            out.append(f"{child(path, key)}: unknown field (not in the schema)")
        else:
            _check(field.schema, item, child(path, key), out)


def _map(schema: MapSchema, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, Mapping):
        out.append(f"{path}: expected map (object), got {kind_of(value)}")
        return
    for key, item in value.items():
        if not isinstance(key, str):
            out.append(f"{child(path, key)}: map keys are strings")
        else:
            _check(schema.value, item, child(path, key), out)


def _array(schema: ArraySchema, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, list):
        out.append(f"{path}: expected array, got {kind_of(value)}")
        return
    for index, item in enumerate(value):
        _check(schema.element, item, f"{path}[{index}]", out)


def child(path: str, key: object) -> str:
    """JSONPath of a member: ``$.name`` or ``$["odd key"]``."""
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]" if not isinstance(key, str) else f'{path}["{key}"]'


def _geo(kind: str, value: object, path: str, out: list[str]) -> None:
    message = check_geo(kind, value)
    if message:
        out.append(f"{path}: {message}")
