"""Semantic types and units on Telemetry, Property and (v3) payloads, fields and map values.

v2 §Semantic Type: a co-type from the table requires ``unit`` of the matching unit type and a
numeric schema; ``unit`` is disallowed otherwise. v3 moved the same rules to the
QuantitativeTypes extension (``dtmi:dtdl:extension:quantitativeTypes;1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aislehub.models import units
from aislehub.models.dialects import NUMERIC, QUANTITATIVE_TYPES
from aislehub.models.elements import Primitive, Schema
from aislehub.models.scope import JsonObj, Scope

_UNIT_PREFIX = "dtmi:standard:unit:"  # v2 Semantic types table, column "Unit DTMI"


@dataclass(frozen=True, slots=True)
class Quantity:
    semantic_type: str | None
    unit: str | None
    informal: bool  # co-typed with something we do not define: undefined members are allowed


def unquantified(cotypes: tuple[str, ...]) -> Quantity:
    """For elements semantic types cannot co-type (v2 Field, MapValue, CommandPayload)."""
    return Quantity(None, None, informal=bool(cotypes))


def quantity(
    scope: Scope, raw: JsonObj, cotypes: tuple[str, ...], schema: Schema | None
) -> Quantity:
    """Check semantic type, unit and schema together; ``schema`` None means already reported."""
    table = scope.ctx.semantic_table()
    semantic = [t for t in cotypes if table is not None and t in table.semantic_to_unit_type]
    informal = any(t not in semantic for t in cotypes)
    if table is None:
        informal = _without_context(scope, cotypes) or informal
    unit = _unit(scope, raw)
    if semantic and table is not None:
        _check(scope, table, semantic[0], unit, schema)
        return Quantity(semantic[0], unit, informal)
    if "unit" in raw and not informal and not scope.ctx.open_world:
        scope.error(
            "unit-without-semantic-type",
            "'unit' is allowed only with a semantic type in '@type'",
            "unit",
        )
    return Quantity(None, unit, informal)


def _without_context(scope: Scope, cotypes: tuple[str, ...]) -> bool:
    """A v3 element naming a QuantitativeTypes semantic type without its context."""
    known = [t for t in cotypes if t in units.QUANTITATIVE_V1.semantic_to_unit_type]
    for cotype in known:
        scope.error(
            "semantic-context",
            f"semantic type {cotype} needs {QUANTITATIVE_TYPES} in '@context' (DTDL v3)",
            "@type",
        )
    return bool(known)


def _unit(scope: Scope, raw: JsonObj) -> str | None:
    value = raw.get("unit")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    if not isinstance(value, str):
        scope.error("member-type", "'unit' must be a string", "unit")
        return None
    if value.startswith(_UNIT_PREFIX):
        return value[len(_UNIT_PREFIX) :].partition(";")[0]
    return value


def _check(
    scope: Scope, table: units.SemanticTable, semantic: str, unit: str | None, schema: Schema | None
) -> None:
    allowed = table.units_for(semantic)
    unit_type = table.semantic_to_unit_type[semantic]
    if unit is None:
        scope.error("semantic-unit", f"semantic type {semantic} requires 'unit' ({unit_type})")
    elif unit not in allowed:
        scope.error(
            "semantic-unit",
            f"unit {unit!r} is not a {unit_type} (semantic type "
            f"{semantic}): one of {', '.join(sorted(allowed))}",
            "unit",
        )
    if schema is not None and not (isinstance(schema, Primitive) and schema.name in NUMERIC):
        scope.error(
            "semantic-schema",
            f"semantic type {semantic} needs a numeric schema (double, float, integer, long)",
            "schema",
        )
