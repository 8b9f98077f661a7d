"""``/devices`` and ``/devices/{deviceId}`` (contract §2.1).

``template`` must name an existing device template when it changes (400 otherwise): that is
how a device is associated, or migrated to another template (``PATCH {"template": …}``);
``template: null`` dissociates the device. Every change is recorded as a lifecycle event
(:mod:`aislehub.hub.lifecycle`): registered, enabled / disabled, displayNameChanged,
templateAssigned, deleted. Blocking (``enabled: false``) or deleting a device closes its
connections at once; the gateway then refuses it (CONNACK 5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request

from aislehub.api.deps import Caller, CallerDep, DeviceId, IfMatch, MergePatch
from aislehub.api.models import DeviceBody, check_etag, parse
from aislehub.api.paging import paged
from aislehub.api.views import device_view
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.lifecycle import device_changes
from aislehub.hub.twins import merge_patch
from aislehub.store.metadata import Device

Json = dict[str, Any]

router = APIRouter(tags=["Devices"])


@router.get("/devices", summary="List devices")
async def list_devices(request: Request, caller: CallerDep) -> Json:
    store = caller.ctx.store
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.list_devices(caller.app_id, offset, limit),
        device_view,
    )


@router.get("/devices/{deviceId}", summary="Get a device")
async def get_device(device_id: DeviceId, caller: CallerDep) -> Json:
    return device_view(caller.device(device_id))


@router.put("/devices/{deviceId}", summary="Create or replace a device")
async def put_device(
    device_id: DeviceId,
    body: DeviceBody,
    caller: CallerDep,
    if_match: IfMatch = None,
) -> Json:
    current = caller.ctx.store.get_device(caller.app_id, device_id)
    return device_view(_save(caller, device_id, current, body, if_match))


@router.patch("/devices/{deviceId}", summary="Update a device (JSON merge patch)")
async def patch_device(
    device_id: DeviceId,
    patch: MergePatch,
    caller: CallerDep,
    if_match: IfMatch = None,
) -> Json:
    current = caller.device(device_id)
    body = parse(DeviceBody, merge_patch(device_view(current), patch))
    return device_view(_save(caller, device_id, current, body, if_match))


@router.delete("/devices/{deviceId}", status_code=204, summary="Delete a device")
async def delete_device(device_id: DeviceId, caller: CallerDep) -> None:
    if not caller.ctx.store.delete_device(caller.app_id, device_id):
        raise NotFound(f"Device {device_id!r} was not found.")
    caller.ctx.store.add_event(caller.app_id, device_id, "deleted", {"source": "api"})
    _disconnect(caller, device_id, "device deleted")


def _save(
    caller: Caller,
    device_id: str,
    current: Device | None,
    body: DeviceBody,
    if_match: str | None,
) -> Device:
    """Write the client-settable fields; ``provisioned``, keys and history stay as they are."""
    if current is not None:
        check_etag(current.etag, if_match, body.etag)
    before = None if current is None else dataclasses.replace(current)
    device = current or Device(caller.app_id, device_id, display_name=device_id)
    if body.template is not None and body.template != device.template:
        _require_template(caller, body.template)
    device.display_name = body.display_name or device_id
    device.template = body.template
    device.enabled = body.enabled
    device.simulated = body.simulated
    device.organizations = list(body.organizations)
    saved = caller.ctx.store.put_device(device)
    for kind, detail in device_changes(before, saved, "api"):
        caller.ctx.store.add_event(caller.app_id, device_id, kind, detail)
    if not saved.enabled:
        _disconnect(caller, device_id, "device blocked")
    return saved


def _require_template(caller: Caller, template_id: str) -> None:
    if not caller.ctx.hub.templates.exists(caller.app_id, template_id):
        raise BadRequest(
            f"Device template {template_id!r} was not found; create it with "
            "PUT /deviceTemplates/{id} first."
        )


def _disconnect(caller: Caller, device_id: str, reason: str) -> None:
    """A blocked or deleted device loses its live connection at once, not at reconnect."""
    caller.ctx.hub.disconnect_device(caller.app_id, device_id, reason)
