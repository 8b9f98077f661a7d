"""Component and module discovery from the device's template (contract §2.4); not paged.

Components are rendered as their DTDL nodes: ``{"@type": "Component", "name",
"displayName", "description", "schema"}`` with the component's Interface id as ``schema``
(the node's inline Interface would repeat the whole model). Modules are the template's
Edge-module ``Relationship`` nodes. An unassociated device has neither: ``{"value": []}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aislehub.api.deps import CallerDep, DeviceId
from aislehub.hub.templates import CompiledTemplate
from aislehub.models import Component, Text

Json = dict[str, Any]

router = APIRouter(tags=["Device components and modules"])

_EDGE_MODULE = {"EdgeModule", "SemanticType/EdgeModule"}


@router.get("/devices/{deviceId}/components", summary="List a device's components")
async def list_components(device_id: DeviceId, caller: CallerDep) -> Json:
    template = caller.template_of(caller.device(device_id))
    return {"value": component_nodes(template) if template else []}


@router.get("/devices/{deviceId}/modules", summary="List a device's (IoT Edge) modules")
async def list_modules(device_id: DeviceId, caller: CallerDep) -> Json:
    template = caller.template_of(caller.device(device_id))
    return {"value": module_nodes(template) if template else []}


def component_nodes(template: CompiledTemplate) -> list[Json]:
    return [_component(c) for c in template.model.root.contents if isinstance(c, Component)]


def module_nodes(template: CompiledTemplate) -> list[Json]:
    model = template.document.get("capabilityModel")
    contents = model.get("contents") if isinstance(model, dict) else None
    nodes = contents if isinstance(contents, list) else []
    return [
        {k: node[k] for k in ("@id", "@type", "name", "displayName", "description") if k in node}
        for node in nodes
        if isinstance(node, dict) and _EDGE_MODULE & set(_types(node.get("@type")))
    ]


def _component(component: Component) -> Json:
    node: Json = {"@type": "Component", "name": component.name}
    if component.id:
        node["@id"] = component.id
    if component.display_name:
        node["displayName"] = _text(component.display_name)
    if component.description:
        node["description"] = _text(component.description)
    node["schema"] = component.interface_id
    return node


def _text(text: Text) -> str | dict[str, str]:
    """A plain string for English-only text, as templates usually write it; else the map."""
    values = dict(text.values)
    return values["en"] if set(values) == {"en"} else values


def _types(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
