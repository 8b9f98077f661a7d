"""Schemas: primitives, geospatial, Enum, Object, Map, Array, and references to reusable ones.

A reference (a DTMI string) is resolved inside the Interface's partition (v3 Spec §Partitions
and referenceability); a reference we cannot resolve here is kept pending so the end of the
parse can tell "unknown" from "defined in another Interface".
"""

from __future__ import annotations

from collections.abc import Mapping

from aislehub.models import members
from aislehub.models.contexts import active_context
from aislehub.models.dialects import COMPLEX, GEOSPATIAL, IOT_CENTRAL, PRIMITIVES, standard_schema
from aislehub.models.elements import (
    ArraySchema,
    EnumSchema,
    Field,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Primitive,
    Schema,
)
from aislehub.models.enums import parse_enum
from aislehub.models.scope import MAX_NESTING, JsonObj, Partition, Scope, items
from aislehub.models.semantics import Quantity, quantity, unquantified

# Stands in for a schema that failed to parse, so the enclosing element can still be checked
# (duplicate names …). It never escapes: any error makes ``parse_models`` raise.
BROKEN: Schema = Primitive("string")

_VECTOR = ObjectSchema(tuple(Field(axis, Primitive("double")) for axis in "xyz"))


def parse_schema(scope: Scope, value: object) -> Schema | None:
    """The schema ``value`` at ``scope`` (the path already ends with the member name)."""
    if len(scope.path) > MAX_NESTING:
        scope.error("schema-depth", "schemas nest far deeper than DTDL allows; not read further")
        return None
    if isinstance(value, list):
        if len(value) != 1:
            scope.error("member-type", "a schema member holds exactly one schema")
            return None
        value = value[0]
    if isinstance(value, str):
        return _named(scope, value)
    if isinstance(value, Mapping):
        return _inline(scope, value)
    scope.error("schema-unknown", "a schema is a schema name, a DTMI or a schema object")
    return None


def _named(scope: Scope, value: str) -> Schema | None:
    term = standard_schema(value, scope.dialect.version)
    if term in PRIMITIVES:
        return Primitive(term)
    if term in GEOSPATIAL:
        return GeoSchema(term)
    iotc = value.removeprefix("dtmi:iotcentral:schema:").partition(";")[0]
    if iotc in ("geopoint", "vector") and IOT_CENTRAL in scope.ctx.extensions:
        return GeoSchema("geopoint") if iotc == "geopoint" else _VECTOR
    if value.startswith("dtmi:"):
        return _reference(scope, value)
    hint = " (needs dtmi:iotcentral:context;2)" if iotc in ("geopoint", "vector") else ""
    scope.error("schema-unknown", f"{value!r} is not a primitive or geospatial schema{hint}")
    return None


def _reference(scope: Scope, ref: str) -> Schema | None:
    partition = scope.partition
    if partition is None or ref not in partition.raw:
        scope.registry.pending_schemas.append((scope.path, ref))
        return None
    if ref in partition.done:
        return partition.done[ref]
    if ref in partition.active:
        scope.error("schema-cycle", f"schema {ref} contains itself")
        return None
    path, ctx, raw = partition.raw[ref]
    partition.active.add(ref)
    result = _complex(Scope(path, ctx, scope.registry, partition), raw)
    partition.active.discard(ref)
    partition.done[ref] = result
    return result


def _inline(scope: Scope, raw: JsonObj) -> Schema | None:
    ref = raw.get("@id")
    if isinstance(ref, str) and _declared_here(scope.partition, ref, raw):
        return _reference(scope, ref)  # parse through the partition's memo, once
    return _complex(scope, raw)


def _declared_here(partition: Partition | None, ref: str, raw: JsonObj) -> bool:
    found = partition.raw.get(ref) if partition is not None else None
    return found is not None and found[2] is raw


def _complex(scope: Scope, raw: JsonObj) -> Schema | None:
    scope = Scope(
        scope.path, active_context(scope, raw, top_level=False), scope.registry, scope.partition
    )
    types = raw.get("@type")
    if types == "Interface" or (isinstance(types, list) and "Interface" in types):
        scope.error("schema-class", "an Interface can only be the schema of a Component")
        return None
    found = members.classify(scope, raw, COMPLEX)
    if found is None:
        return None
    cls, cotypes = found
    members.element_id(scope, raw, required=False)
    members.undefined_members(scope, raw, cls, bool(cotypes))
    parse = {"Array": _array, "Enum": parse_enum, "Map": _map, "Object": _object}[cls]
    return parse(scope, raw)


def _array(scope: Scope, raw: JsonObj) -> Schema:
    if "elementSchema" not in raw:
        scope.error("member-required", "'elementSchema' is required")
    element = parse_schema(scope.at("elementSchema"), raw.get("elementSchema", "string"))
    return ArraySchema(element or BROKEN, _id(raw), members.text(scope, raw, "displayName"))


def _object(scope: Scope, raw: JsonObj) -> Schema:
    found_items = items(raw, "fields")
    if not found_items and scope.dialect.fields_required:
        scope.error("member-required", "'fields' is required with at least one Field (DTDL v2)")
    limit = scope.dialect.fields_max
    if limit is not None and len(found_items) > limit:
        scope.error("set-size", f"{len(found_items)} fields, max {limit}", "fields")
    fields: list[Field] = []
    named: list[tuple[str, str]] = []
    for segment, item in found_items:
        if (found := _field(scope.at(segment), item)) is not None:
            fields.append(found)
            named.append((segment, found.name))
    members.unique(scope, named, "fields")
    return ObjectSchema(tuple(fields), _id(raw), members.text(scope, raw, "displayName"))


def _field(scope: Scope, raw: object) -> Field | None:
    if not isinstance(raw, Mapping):
        scope.error("member-type", "a Field is an object")
        return None
    name, schema, qty = _named_value(scope, raw, "Field")
    display = members.text(scope, raw, "displayName")
    return Field(name or "", schema or BROKEN, display, qty.semantic_type, qty.unit)


def _map(scope: Scope, raw: JsonObj) -> Schema:
    key = _map_key(scope, raw.get("mapKey"))
    value = raw.get("mapValue")
    if not isinstance(value, Mapping):
        scope.error("member-required", "'mapValue' is required (an object with name and schema)")
        return MapSchema(key, BROKEN)
    name, schema, _ = _named_value(scope.at("mapValue"), value, "MapValue")
    return MapSchema(
        key, schema or BROKEN, name or "value", _id(raw), members.text(scope, raw, "displayName")
    )


def _map_key(scope: Scope, raw: object) -> str:
    scope = scope.at("mapKey")
    if not isinstance(raw, Mapping):
        scope.error("member-required", "'mapKey' is required (an object with name and schema)")
        return "key"
    found = members.classify(scope, raw, ("MapKey",), implied="MapKey")
    members.undefined_members(scope, raw, "MapKey", bool(found and found[1]))
    schema = members.one(scope, raw, "schema")
    if not isinstance(schema, str) or standard_schema(schema, scope.dialect.version) != "string":
        scope.error("map-key", "the schema of a MapKey must be 'string'", "schema")
    return members.name(scope, raw) or "key"


def _named_value(
    scope: Scope, raw: JsonObj, cls: str
) -> tuple[str | None, Schema | None, Quantity]:
    """``name`` + ``schema`` (+ semantic type and unit in v3) of a Field or MapValue."""
    found = members.classify(scope, raw, (cls,), implied=cls)
    cotypes = found[1] if found else ()
    members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    if "schema" not in raw:
        scope.error("member-required", "'schema' is required")
    schema = parse_schema(scope.at("schema"), raw.get("schema", "string"))
    # QuantitativeTypes v1 co-types Fields and MapValues too; v2 semantic types do not.
    v3 = scope.dialect.version >= 3
    qty = quantity(scope, raw, cotypes, schema) if v3 else unquantified(cotypes)
    members.undefined_members(scope, raw, cls, qty.informal, ("unit",) if v3 else ())
    return name, schema, qty


def _id(raw: JsonObj) -> str | None:
    value = raw.get("@id")
    return value if isinstance(value, str) else None


def depth(schema: Schema) -> int:
    """How many complex schemas nest here (v2/v3 §Complex schema: at most 5)."""
    if isinstance(schema, ArraySchema):
        return 1 + depth(schema.element)
    if isinstance(schema, MapSchema):
        return 1 + depth(schema.value)
    if isinstance(schema, ObjectSchema):
        return 1 + max((depth(f.schema) for f in schema.fields), default=0)
    return 1 if isinstance(schema, EnumSchema) else 0


def check_usage(scope: Scope, schema: Schema | None) -> None:
    """Depth limit, checked where a schema is used by a Telemetry, Property, payload …"""
    if schema is not None and depth(schema) > scope.dialect.schema_depth_max:
        scope.error(
            "schema-depth",
            f"complex schemas nest {depth(schema)} levels deep, "
            f"max {scope.dialect.schema_depth_max}",
        )
