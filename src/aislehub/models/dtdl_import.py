"""Plain DTDL in, an IoT Central device template out (the shape ``/deviceTemplates`` takes).

A Plug and Play model usually ships as several documents: the root Interface and the
Interfaces its Components and ``extends`` name by DTMI. A device template carries one
``capabilityModel``, so the referenced Interfaces are written inline where first used; a
second use (two ``thermostat`` Components of one Interface) keeps the DTMI, which resolves to
the inline copy (an @id may be defined only once in a model, v3 Spec §<class> @id).

The root is the Interface no other one references (the first such when several are
unreferenced). Nothing is validated here: ``load_iot_central_template`` does that next.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]

TEMPLATE_TYPES = ["ModelDefinition", "DeviceModel"]


def is_device_template(doc: object) -> bool:
    """An IoT Central ``DeviceTemplate`` (export or API body) rather than DTDL."""
    return isinstance(doc, Mapping) and "capabilityModel" in doc


def template_from_dtdl(document: object, template_id: str | None = None) -> Json:
    """The template for a DTDL document (an Interface or an array of them; JSON text too)."""
    interfaces = _interfaces(
        json.loads(document) if isinstance(document, str | bytes) else document
    )
    if not interfaces:
        raise ValueError("no DTDL Interface with an @id found in the document")
    by_id = {str(i["@id"]): i for i in interfaces}
    root = _root(interfaces)
    model = _inline(root, by_id, {str(root["@id"])})
    context = root.get("@context", "dtmi:dtdl:context;2")
    template: Json = {
        "@id": template_id or str(root["@id"]),
        "@type": list(TEMPLATE_TYPES),
        "@context": context if isinstance(context, list) else [context],
        "displayName": _display_name(root),
        "capabilityModel": model,
    }
    return template


def _interfaces(doc: object) -> list[Json]:
    items = doc if isinstance(doc, list) else [doc]
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("@id"), str)]


def _root(interfaces: list[Json]) -> Json:
    referenced = {ref for i in interfaces for ref in _references(i)}
    return next((i for i in interfaces if i["@id"] not in referenced), interfaces[0])


def _references(interface: Json) -> list[str]:
    refs = [e for e in _as_list(interface.get("extends")) if isinstance(e, str)]
    for content in _as_list(interface.get("contents")):
        if isinstance(content, dict) and _is_component(content):
            schema = content.get("schema")
            refs += [schema] if isinstance(schema, str) else []
    return refs


def _inline(interface: Json, by_id: Mapping[str, Json], seen: set[str]) -> Json:
    """A copy of ``interface`` with referenced Interfaces inlined at their first use."""
    out = copy.deepcopy(interface)
    if "extends" in out:
        extends = [_expand(e, by_id, seen) for e in _as_list(out["extends"])]
        out["extends"] = extends if isinstance(interface["extends"], list) else extends[0]
    for content in _as_list(out.get("contents")):
        if isinstance(content, dict) and _is_component(content):
            content["schema"] = _expand(content.get("schema"), by_id, seen)
    return out


def _expand(ref: object, by_id: Mapping[str, Json], seen: set[str]) -> object:
    if not isinstance(ref, str) or ref not in by_id or ref in seen:
        return ref
    seen.add(ref)
    return _inline(by_id[ref], by_id, seen)


def _is_component(content: Json) -> bool:
    kinds = content.get("@type")
    return kinds == "Component" or (isinstance(kinds, list) and "Component" in kinds)


def _display_name(interface: Json) -> str:
    name = interface.get("displayName")
    if isinstance(name, dict):
        name = name.get("en") or next(iter(name.values()), None)
    return name if isinstance(name, str) else str(interface["@id"])


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
