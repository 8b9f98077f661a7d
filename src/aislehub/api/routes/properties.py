"""Device properties at four scopes: device, component, module, module component (§2.3).

GET shows reported values with ``$metadata`` (``twins.properties_view``). PATCH merges and
PUT replaces the *desired* values at that scope; both answer 202 because the device applies
them later: the hub stores the patch, bumps ``$version`` and pushes it to a connected device.

Components follow the PnP convention: in the twin a component is an object marked
``"__t": "c"``. A component-scope write ``{p: v}`` becomes ``{c: {"__t": "c", p: v}}``. At
device scope an object-valued key is treated as a component when the template says so, the
twin already marks it as one, or the body does; otherwise it is an object-valued property.
Keys starting with ``$`` (``$metadata``, ``$version``) are read-only and ignored, so a GET
body can be PUT back.

When the device has a template, writes are checked against it (``hub.template_checks``:
unknown, read-only or mistyped → 422, before anything reaches the device) and cloud
properties are stored in the cloud, never sent; they come back in GET beside the twin's
values and in the 202 body as plain values (they apply at once). Module scopes are not
modeled by templates here and are never checked.

``GET /devices/{d}/properties/status`` (ours) lists each writable property's acknowledgement
state: pending, accepted or rejected (``hub.property_view``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from aislehub.api.deps import Caller, CallerDep, DeviceId, MergePatch
from aislehub.hub.property_view import properties_view, property_status
from aislehub.hub.template_checks import plan_property_write, require_component
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.metadata import Twin
from aislehub.store.rows import iso_stamp, utcnow

Json = dict[str, Any]
Component = Annotated[str, Path(alias="componentName")]
Module = Annotated[str, Path(alias="moduleName")]

router = APIRouter(tags=["Device properties"])

_DEVICE = "/devices/{deviceId}/properties"
_COMPONENT = "/devices/{deviceId}/components/{componentName}/properties"
_MODULE = "/devices/{deviceId}/modules/{moduleName}/properties"
_MODULE_COMPONENT = "/devices/{deviceId}/modules/{moduleName}/components/{componentName}/properties"


@router.get(_DEVICE, summary="Get device properties")
async def get_device_properties(device_id: DeviceId, caller: CallerDep) -> Json:
    return _view(caller, device_id, None, None)


@router.put(_DEVICE, status_code=202, summary="Replace writable device properties")
@router.patch(_DEVICE, status_code=202, summary="Update writable device properties")
async def write_device_properties(
    request: Request,
    device_id: DeviceId,
    body: MergePatch,
    caller: CallerDep,
) -> Json:
    return _write(caller, device_id, None, None, body, request.method == "PUT")


@router.get(_DEVICE + "/status", summary="Writable-property acknowledgements (aislehub extension)")
async def get_property_status(device_id: DeviceId, caller: CallerDep) -> Json:
    template = caller.template_of(caller.device(device_id))
    twin = caller.ctx.hub.twin(caller.key(device_id))
    return {"value": property_status(twin, template.writable if template else None)}


@router.get(_COMPONENT, summary="Get component properties")
async def get_component_properties(
    device_id: DeviceId,
    component: Component,
    caller: CallerDep,
) -> Json:
    return _view(caller, device_id, None, component)


@router.put(_COMPONENT, status_code=202, summary="Replace writable component properties")
@router.patch(_COMPONENT, status_code=202, summary="Update writable component properties")
async def write_component_properties(
    request: Request,
    device_id: DeviceId,
    component: Component,
    body: MergePatch,
    caller: CallerDep,
) -> Json:
    return _write(caller, device_id, None, component, body, request.method == "PUT")


@router.get(_MODULE, summary="Get module properties")
async def get_module_properties(device_id: DeviceId, module: Module, caller: CallerDep) -> Json:
    return _view(caller, device_id, module, None)


@router.put(_MODULE, status_code=202, summary="Replace writable module properties")
@router.patch(_MODULE, status_code=202, summary="Update writable module properties")
async def write_module_properties(
    request: Request,
    device_id: DeviceId,
    module: Module,
    body: MergePatch,
    caller: CallerDep,
) -> Json:
    return _write(caller, device_id, module, None, body, request.method == "PUT")


@router.get(_MODULE_COMPONENT, summary="Get module component properties")
async def get_module_component_properties(
    device_id: DeviceId,
    module: Module,
    component: Component,
    caller: CallerDep,
) -> Json:
    return _view(caller, device_id, module, component)


@router.put(_MODULE_COMPONENT, status_code=202, summary="Replace module component properties")
@router.patch(_MODULE_COMPONENT, status_code=202, summary="Update module component properties")
async def write_module_component_properties(
    request: Request,
    device_id: DeviceId,
    module: Module,
    component: Component,
    body: MergePatch,
    caller: CallerDep,
) -> Json:
    return _write(caller, device_id, module, component, body, request.method == "PUT")


def _view(caller: Caller, device_id: str, module: str | None, component: str | None) -> Json:
    device = caller.device(device_id)
    template = caller.template_of(device) if module is None else None
    twin = caller.ctx.hub.twin(caller.key(device_id, module))
    if template is None:
        view = properties_view(twin)
    else:
        cloud = caller.ctx.store.cloud.get(caller.app_id, device_id)
        view = properties_view(twin, template.writable, cloud)
    if component is None:
        return view
    if template is not None:
        require_component(template, component)
    scoped = view.get(component)
    return scoped if isinstance(scoped, dict) and "$metadata" in scoped else {"$metadata": {}}


def _write(
    caller: Caller,
    device_id: str,
    module: str | None,
    component: str | None,
    body: Json,
    replace: bool,
) -> Json:
    device = caller.device(device_id)
    template = caller.template_of(device) if module is None else None
    plan = plan_property_write(template, component, _writable(body))
    key = caller.key(device_id, module)
    twin = caller.ctx.hub.twin(key)
    components = set(template.model.components) if template else set()
    patch = desired_patch(twin, component, plan.desired, replace, components)
    if patch:
        caller.ctx.hub.patch_desired(key, patch)
    response = accepted(patch.get(component, {}) if component is not None else patch)
    if template is not None and component is None:
        response = _write_cloud(caller, device_id, plan.cloud, replace) | response
    return response


def _write_cloud(caller: Caller, device_id: str, values: Json, replace: bool) -> Json:
    """Store cloud properties (never sent to the device); the values written, for the 202."""
    store = caller.ctx.store.cloud
    current = store.get(caller.app_id, device_id)
    changes = _replacing(current.values, values, replace)
    if not changes:
        return {}
    stamp = iso_stamp(utcnow())
    kept = {k: v for k, v in current.values.items() if k not in changes}
    written = {k: v for k, v in changes.items() if v is not None}
    updated = {k: v for k, v in current.updated.items() if k in kept} | dict.fromkeys(
        written, stamp
    )
    store.save(caller.app_id, device_id, CloudValues(kept | written, updated))
    return written


def desired_patch(
    twin: Twin,
    component: str | None,
    body: Json,
    replace: bool,
    components: set[str] | frozenset[str] = frozenset(),
) -> Json:
    """The twin desired patch for a write at device scope or in ``component``;
    ``components`` are the names the template declares as components."""
    if component is not None:
        current = twin.desired.get(component)
        inner = _replacing(current if isinstance(current, dict) else {}, body, replace)
        return {component: {"__t": "c", **inner}} if inner else {}
    patch = _replacing(twin.desired, {}, replace)
    for name, value in body.items():
        if isinstance(value, dict) and (name in components or _is_component(twin, name, value)):
            current = twin.desired.get(name)
            inner = _replacing(current if isinstance(current, dict) else {}, value, replace)
            patch[name] = {"__t": "c", **inner}
        else:
            patch[name] = value
    return patch


def _replacing(current: Json, body: Json, replace: bool) -> Json:
    """``body``, plus a ``null`` for every current key it leaves out when replacing."""
    removed = {k: None for k in current if replace and k not in body and k != "__t"}
    return {**removed, **body}


def _is_component(twin: Twin, name: str, value: Json) -> bool:
    marked = [value, twin.desired.get(name), twin.reported.get(name)]
    return any(isinstance(m, dict) and m.get("__t") == "c" for m in marked)


def _writable(body: Json) -> Json:
    """Drop read-only ``$`` keys (``$metadata``, ``$version``) at every level we write."""
    return {
        k: _writable(v) if isinstance(v, dict) else v
        for k, v in body.items()
        if not k.startswith("$")
    }


def accepted(patch: Json) -> Json:
    """The 202 body: ``{"$metadata": {p: {"desiredValue": v}}}``, components nested."""
    meta: Json = {}
    view: Json = {}
    for name, value in patch.items():
        if name == "__t":
            continue
        if isinstance(value, dict) and value.get("__t") == "c":
            view[name] = accepted(value)
        else:
            meta[name] = {"desiredValue": value}
    view["$metadata"] = meta
    return view
