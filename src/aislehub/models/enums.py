"""Enum schemas (v2/v3 §Enum, §EnumValue): integer or string values, unique names and values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

from aislehub.models import members
from aislehub.models.dialects import standard_schema
from aislehub.models.elements import EnumSchema, EnumValue
from aislehub.models.scope import JsonObj, Scope, items

_INT32 = (-(2**31), 2**31 - 1)  # v3 Spec §Terminology: an integer is expressible in 4 bytes


def parse_enum(scope: Scope, raw: JsonObj) -> EnumSchema:
    value_schema = _value_schema(scope, raw)
    found_items = items(raw, "enumValues")
    if not found_items and scope.dialect.enum_values_required:
        scope.error("member-required", "'enumValues' is required (DTDL v2)")
    limit = scope.dialect.enum_values_max
    if limit is not None and len(found_items) > limit:
        scope.error("set-size", f"{len(found_items)} enumValues, max {limit}", "enumValues")
    values: list[EnumValue] = []
    named: list[tuple[str, str]] = []
    for segment, item in found_items:
        found = _enum_value(scope.at(segment), item, value_schema)
        if found is not None:
            values.append(found)
            named.append((segment, found.name))
    members.unique(scope, named, "enumValues")
    _unique_values(scope, values, [segment for segment, _ in named])
    ref = raw.get("@id")
    display = members.text(scope, raw, "displayName")
    return EnumSchema(
        value_schema or "string", tuple(values), ref if isinstance(ref, str) else None, display
    )


def _value_schema(scope: Scope, raw: JsonObj) -> str | None:
    if "valueSchema" not in raw:
        scope.error("member-required", "'valueSchema' is required (integer or string)")
        return None
    value = members.one(scope, raw, "valueSchema")
    term = standard_schema(value, scope.dialect.version) if isinstance(value, str) else None
    if term not in ("integer", "string"):
        scope.error(
            "enum-value-schema",
            f"valueSchema must be integer or string, not {value!r}",
            "valueSchema",
        )
        return None
    return term


def _enum_value(scope: Scope, raw: object, value_schema: str | None) -> EnumValue | None:
    if not isinstance(raw, Mapping):
        scope.error("member-type", "an EnumValue is an object")
        return None
    found = members.classify(scope, raw, ("EnumValue",), implied="EnumValue")
    members.element_id(scope, raw, required=False)
    members.undefined_members(scope, raw, "EnumValue", bool(found and found[1]))
    name = members.name(scope, raw)
    if "enumValue" not in raw:
        scope.error("member-required", "'enumValue' is required")
        return None
    value = members.one(scope, raw, "enumValue")
    if not _fits(value, value_schema):
        if value_schema is not None:
            scope.error(
                "enum-value", f"enumValue {value!r} is not a valid {value_schema}", "enumValue"
            )
        return None
    return EnumValue(name or "", value, members.text(scope, raw, "displayName"))


def _fits(value: object, value_schema: str | None) -> TypeGuard[int | str]:
    if value_schema == "integer":
        return _int32(value)
    if value_schema == "string":
        return isinstance(value, str)
    return _int32(value) or isinstance(value, str)  # valueSchema is broken: already reported


def _int32(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return _INT32[0] <= value <= _INT32[1]


def _unique_values(scope: Scope, values: list[EnumValue], segments: list[str]) -> None:
    seen: set[int | str] = set()
    for value, segment in zip(values, segments, strict=True):
        if value.value in seen:
            scope.error(
                "enum-value", f"enumValue {value.value!r} is used twice", segment, "enumValue"
            )
        seen.add(value.value)
