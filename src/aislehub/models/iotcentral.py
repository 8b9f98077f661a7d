"""Import of an IoT Central device template (IoT Central REST API, ``/deviceTemplates``).

A template is ``{"@id", "@type": ["ModelDefinition", "DeviceModel"], "@context",
"displayName", "capabilityModel": <DTDL v2 Interface>}``. Its ``@context`` (usually
``["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"]``) applies to the capability model.
IoT Central keeps cloud properties (``"@type": ["Property", "Cloud"]``) among the model's
contents; devices never see them, so they are taken out of the model and returned apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import NamedTuple

from aislehub.models.contexts import active_context
from aislehub.models.dialects import DTMI_V3, IOT_CENTRAL, V2
from aislehub.models.elements import Interface, Property
from aislehub.models.errors import ModelErrors
from aislehub.models.modelset import ModelSet, flatten
from aislehub.models.parser import finish, top_level
from aislehub.models.scope import ActiveContext, JsonObj, Registry, Scope

_DEFAULT = ActiveContext(V2, (IOT_CENTRAL,))  # a template without @context is IoT Central v2


class DeviceTemplate(NamedTuple):
    models: ModelSet
    root_id: str
    cloud_properties: tuple[Property, ...]


def load_iot_central_template(doc: Mapping[str, object] | str | bytes) -> DeviceTemplate:
    """The model set, the capability model's @id and the cloud properties of a template."""
    registry = Registry()
    raw = _json(registry, doc)
    ref = raw.get("@id")
    scope = Scope((ref if isinstance(ref, str) else "template",), _DEFAULT, registry)
    _check_template(scope, raw)
    model = raw.get("capabilityModel")
    root_id = None
    if isinstance(model, Mapping):
        ctx = active_context(scope, raw, top_level=False) if "@context" in raw else _DEFAULT
        root_id = top_level(registry, "capabilityModel", model, inherited=ctx)
    models = finish(registry)
    if root_id is None:  # only when an error was reported, which ``finish`` raised
        raise ModelErrors(registry.sink.errors)
    return _without_cloud(models, root_id)


def _json(registry: Registry, doc: Mapping[str, object] | str | bytes) -> JsonObj:
    if isinstance(doc, Mapping):
        return doc
    try:
        loaded = json.loads(doc)
    except ValueError as exc:
        registry.sink.add(("template",), "document-shape", f"not JSON: {exc}")
        return {}
    return loaded if isinstance(loaded, Mapping) else {}


def _check_template(scope: Scope, raw: JsonObj) -> None:
    types = raw.get("@type")
    kinds = types if isinstance(types, list) else [types]
    if "DeviceModel" not in kinds:
        scope.error(
            "template",
            "a device template's '@type' includes 'ModelDefinition' and 'DeviceModel'",
            "@type",
        )
    ref = raw.get("@id")
    if ref is not None and not (isinstance(ref, str) and DTMI_V3.match(ref)):
        scope.error("dtmi-syntax", f"template @id {ref!r} is not a DTMI", "@id")
    if not isinstance(raw.get("capabilityModel"), Mapping):
        scope.error(
            "template", "'capabilityModel' (a DTDL Interface) is required", "capabilityModel"
        )


def _is_cloud(content: object) -> bool:
    return isinstance(content, Property) and "Cloud" in content.cotypes


def _without_cloud(models: ModelSet, root_id: str) -> DeviceTemplate:
    cloud = tuple(
        content
        for _, content in flatten(models.interfaces, root_id)
        if isinstance(content, Property) and _is_cloud(content)
    )
    interfaces: dict[str, Interface] = {
        iid: replace(i, contents=tuple(c for c in i.contents if not _is_cloud(c)))
        for iid, i in models.interfaces.items()
    }
    return DeviceTemplate(ModelSet(MappingProxyType(interfaces)), root_id, cloud)
