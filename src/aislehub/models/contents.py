"""Interface contents: Telemetry, Property, Command, Component, Relationship (v2/v3 §<class>)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aislehub.models import members
from aislehub.models.contexts import active_context
from aislehub.models.dialects import CONTENT_CLASSES
from aislehub.models.elements import (
    ArraySchema,
    Command,
    CommandPayload,
    Component,
    Content,
    GeoSchema,
    MapSchema,
    ObjectSchema,
    Property,
    Relationship,
    Schema,
    Telemetry,
    Text,
)
from aislehub.models.schemas import BROKEN, check_usage, parse_schema
from aislehub.models.scope import JsonObj, Scope, items
from aislehub.models.semantics import quantity, unquantified

# Component schemas may be inline Interfaces; ``interfaces`` hands us its parser at import.
InterfaceParser = Callable[[Scope, JsonObj], str | None]
_COMMAND_TYPES = ("synchronous", "asynchronous")  # v2/v3 §Command commandType (deprecated)


def parse_content(scope: Scope, raw: JsonObj, inline: InterfaceParser) -> Content | None:
    scope = Scope(
        scope.path, active_context(scope, raw, top_level=False), scope.registry, scope.partition
    )
    found = members.classify(scope, raw, CONTENT_CLASSES)
    if found is None:
        return None
    cls, cotypes = found
    if cls == "Component":
        return _component(scope, raw, cotypes, inline)
    if cls == "Relationship":
        return _relationship(scope, raw, cotypes, inline)
    return _PARSERS[cls](scope, raw, cotypes)


def _described(scope: Scope, raw: JsonObj) -> tuple[Text | None, Text | None]:
    members.comment(scope, raw)
    return members.text(scope, raw, "displayName"), members.text(scope, raw, "description")


def _schema(scope: Scope, raw: JsonObj) -> Schema | None:
    if "schema" not in raw:
        scope.error("member-required", "'schema' is required")
        return None
    schema = parse_schema(scope.at("schema"), raw["schema"])
    check_usage(scope.at("schema"), schema)
    return schema


def _telemetry(scope: Scope, raw: JsonObj, cotypes: tuple[str, ...]) -> Telemetry:
    eid = members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    schema = _schema(scope, raw)
    qty = quantity(scope, raw, cotypes, schema)
    members.undefined_members(scope, raw, "Telemetry", qty.informal, ("unit",))
    display, description = _described(scope, raw)
    return Telemetry(
        name or "",
        schema or BROKEN,
        qty.semantic_type,
        qty.unit,
        display,
        description,
        eid,
        cotypes,
    )


def parse_property(scope: Scope, raw: JsonObj, cotypes: tuple[str, ...]) -> Property:
    eid = members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    schema = _schema(scope, raw)
    if schema is not None and not scope.dialect.property_allows_array and _has_array(schema):
        scope.error(
            "property-array",
            "a DTDL v2 Property cannot hold an Array or a geospatial schema (DTDL v3 can)",
            "schema",
        )
    qty = quantity(scope, raw, cotypes, schema)
    members.undefined_members(scope, raw, "Property", qty.informal, ("unit",))
    writable = members.boolean(scope, raw, "writable")
    display, description = _described(scope, raw)
    return Property(
        name or "",
        schema or BROKEN,
        bool(writable),
        qty.semantic_type,
        qty.unit,
        display,
        description,
        eid,
        cotypes,
    )


def _has_array(schema: Schema) -> bool:
    if isinstance(schema, ArraySchema):
        return True
    if isinstance(schema, GeoSchema):
        return schema.kind != "geopoint"  # IoT Central's geopoint is an object, not GeoJSON
    if isinstance(schema, MapSchema):
        return _has_array(schema.value)
    if isinstance(schema, ObjectSchema):
        return any(_has_array(f.schema) for f in schema.fields)
    return False


def _command(scope: Scope, raw: JsonObj, cotypes: tuple[str, ...]) -> Command:
    eid = members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    members.undefined_members(scope, raw, "Command", bool(cotypes))
    _command_type(scope, raw)
    request_cls, response_cls = scope.dialect.payload_classes
    request = _payload(scope.at("request"), raw.get("request"), request_cls)
    response = _payload(scope.at("response"), raw.get("response"), response_cls)
    display, description = _described(scope, raw)
    return Command(name or "", request, response, display, description, eid, cotypes)


def _command_type(scope: Scope, raw: JsonObj) -> None:
    """v2/v3 §Command commandType: deprecated; checked, then ignored."""
    kind = members.one(scope, raw, "commandType")
    term = str(kind).rpartition(":")[2].partition(";")[0]  # the term or its DTMI spelling
    if kind is not None and term not in _COMMAND_TYPES:
        message = f"commandType {kind!r} is not synchronous or asynchronous"
        scope.error("command-type", message, "commandType")


def _payload(scope: Scope, raw: object, cls: str) -> CommandPayload | None:
    """v2 §CommandPayload, v3 §CommandRequest / §CommandResponse: ``name`` and ``schema``."""
    if raw is None:
        return None
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not isinstance(raw, Mapping):
        scope.error("member-type", f"a {cls} is an object with 'name' and 'schema'")
        return None
    found = members.classify(scope, raw, (cls,), implied=cls)
    cotypes = found[1] if found else ()
    members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    schema = _schema(scope, raw)
    # QuantitativeTypes v1 co-types CommandRequest/Response; v2 CommandPayload takes none.
    v3 = scope.dialect.version >= 3
    qty = quantity(scope, raw, cotypes, schema) if v3 else unquantified(cotypes)
    members.undefined_members(scope, raw, cls, qty.informal, ("unit",) if v3 else ())
    display, description = _described(scope, raw)
    return CommandPayload(
        name or "", schema or BROKEN, display, description, qty.semantic_type, qty.unit
    )


def _component(
    scope: Scope, raw: JsonObj, cotypes: tuple[str, ...], inline: InterfaceParser
) -> Component:
    eid = members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    members.undefined_members(scope, raw, "Component", bool(cotypes))
    target = _component_schema(scope, raw, inline)
    display, description = _described(scope, raw)
    return Component(name or "", target or "", display, description, eid)


def _component_schema(scope: Scope, raw: JsonObj, inline: InterfaceParser) -> str | None:
    """v2/v3 §Component schema: an Interface, by DTMI or inline; resolved at the end."""
    if "schema" not in raw:
        scope.error("member-required", "'schema' is required (an Interface)")
        return None
    value = members.one(scope, raw, "schema")
    at = scope.at("schema")
    if isinstance(value, str) and scope.dialect.dtmi.match(value):
        return value
    if isinstance(value, Mapping):
        return inline(at, value)
    if isinstance(value, str) and value.startswith("dtmi:"):
        at.error("dtmi-syntax", f"{value!r} is not a DTMI valid in DTDL v{scope.dialect.version}")
        return None
    at.error("component-class", f"the schema of a Component must be an Interface, not {value!r}")
    return None


def _relationship(
    scope: Scope, raw: JsonObj, cotypes: tuple[str, ...], inline: InterfaceParser
) -> Relationship:
    eid = members.element_id(scope, raw, required=False)
    name = members.name(scope, raw)
    members.undefined_members(scope, raw, "Relationship", bool(cotypes))
    target = _edge_module_target(scope, raw, inline) if _is_edge_module(cotypes) else None
    if target is None:
        target = members.string(scope, raw, "target")
    if target is not None and not scope.dialect.dtmi.match(target):
        scope.error("dtmi-syntax", f"target {target!r} is not a DTMI", "target")
    low, high = _multiplicity(scope, raw)
    display, description = _described(scope, raw)
    writable = bool(members.boolean(scope, raw, "writable"))
    properties = _relationship_properties(scope, raw)
    return Relationship(
        name or "", target, low, high, writable, properties, display, description, eid, cotypes
    )


def _is_edge_module(cotypes: tuple[str, ...]) -> bool:
    return any(t in ("EdgeModule", "SemanticType/EdgeModule") for t in cotypes)


def _edge_module_target(scope: Scope, raw: JsonObj, inline: InterfaceParser) -> str | None:
    """IoT Central's Edge templates define a module's Interface inline in ``target`` (an
    object, or a list of one): parse it like a Component's inline schema, keep its id."""
    value = raw.get("target")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, Mapping):
        return inline(scope.at("target"), value)
    return None


def _multiplicity(scope: Scope, raw: JsonObj) -> tuple[int | None, int | None]:
    low = members.integer(scope, raw, "minMultiplicity")
    high = members.integer(scope, raw, "maxMultiplicity")
    if low is not None and low != 0:
        scope.error("multiplicity", "minMultiplicity must be 0", "minMultiplicity")
    cap = scope.dialect.max_multiplicity_max
    if high is not None and (high < 1 or (cap is not None and high > cap)):
        bound = f"between 1 and {cap}" if cap else "at least 1"
        scope.error("multiplicity", f"maxMultiplicity must be {bound}", "maxMultiplicity")
    return low, high


def _relationship_properties(scope: Scope, raw: JsonObj) -> tuple[Property, ...]:
    found = items(raw, "properties")
    cap = scope.dialect.relationship_properties_max
    if cap is not None and len(found) > cap:
        scope.error("set-size", f"{len(found)} properties, max {cap}", "properties")
    result: list[Property] = []
    named: list[tuple[str, str]] = []
    for segment, item in found:
        at = scope.at(segment)
        if not isinstance(item, Mapping):
            at.error("member-type", "a Relationship property is an object")
            continue
        kind = members.classify(at, item, ("Property",))
        if kind is not None:
            result.append(parse_property(at, item, kind[1]))
            named.append((segment, result[-1].name))
    members.unique(scope, named, "the Relationship's properties")
    return tuple(result)


_PARSERS: dict[str, Callable[[Scope, JsonObj, tuple[str, ...]], Content]] = {
    "Telemetry": _telemetry,
    "Property": parse_property,
    "Command": _command,
}
