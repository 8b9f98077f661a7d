"""Component and module discovery from the device's template (contract §2.4); not paged.

Components are rendered as their DTDL nodes: ``{"@type": "Component", "name",
"displayName", "description", "schema"}`` with the component's Interface id as ``schema``
(the node's inline Interface would repeat the whole model). Modules are the template's
Edge-module ``Relationship`` nodes, and a module's components the Component nodes of the
Interface its relationship targets. An unassociated device has neither: ``{"value": []}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from aislehub.api.deps import CallerDep, DeviceId
from aislehub.errors import NotFound
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


@router.get(
    "/devices/{deviceId}/modules/{moduleName}/components",
    summary="List the components of a device's module",
)
async def list_module_components(
    device_id: DeviceId,
    module: Annotated[str, Path(alias="moduleName")],
    caller: CallerDep,
) -> Json:
    template = caller.template_of(caller.device(device_id))
    node = next((n for n in _module_relationships(template) if n.get("name") == module), None)
    if node is None:
        raise NotFound(f"Device {device_id!r} has no module {module!r} in its template.")
    return {"value": module_component_nodes(node)}


def module_component_nodes(module: Json) -> list[Json]:
    """The Component nodes of a module's target Interface(s), as the template writes them
    (IoT Central's Edge templates define the module's Interface inline in ``target``)."""
    targets = module.get("target")
    interfaces = targets if isinstance(targets, list) else [targets]
    nodes = []
    for interface in interfaces:
        contents = interface.get("contents") if isinstance(interface, dict) else None
        for node in contents if isinstance(contents, list) else []:
            if isinstance(node, dict) and "Component" in _types(node.get("@type")):
                schema = node.get("schema")
                if isinstance(schema, dict):  # an inline Interface: name it by its id
                    node = node | {"schema": schema.get("@id")}
                keys = ("@id", "@type", "name", "displayName", "description", "schema")
                nodes.append({k: node[k] for k in keys if k in node})
    return nodes


def component_nodes(template: CompiledTemplate) -> list[Json]:
    return [_component(c) for c in template.model.root.contents if isinstance(c, Component)]


def module_nodes(template: CompiledTemplate) -> list[Json]:
    return [
        {k: node[k] for k in ("@id", "@type", "name", "displayName", "description") if k in node}
        for node in _module_relationships(template)
    ]


def _module_relationships(template: CompiledTemplate | None) -> list[Json]:
    """The template's Edge-module Relationship nodes, as written in its document."""
    model = template.document.get("capabilityModel") if template else None
    contents = model.get("contents") if isinstance(model, dict) else None
    nodes = contents if isinstance(contents, list) else []
    return [
        node
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
