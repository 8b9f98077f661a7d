"""``/devices/{deviceId}/attestation`` and ``/credentials`` (contract §2.2).

Devices authenticate with symmetric keys: their own (individual attestation, stored on the
device) or, without one, the keys derived from their enrollment group (DPS convention,
``HMAC-SHA256(group key, deviceId)``). ``x509`` and ``tpm`` are refused with a 422.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from fastapi import APIRouter

from aislehub.api.deps import Caller, CallerDep, DeviceId, MergePatch
from aislehub.api.models import AttestationBody, SymmetricKeyBody, parse
from aislehub.errors import NotFound, ValidationFailed
from aislehub.hub.auth import DEFAULT_GROUP, derived_keys
from aislehub.hub.twins import merge_patch
from aislehub.store.metadata import Device

Json = dict[str, Any]

router = APIRouter(tags=["Devices"])


def new_symmetric_key() -> str:
    """32 random bytes, base64: what IoT Central and DPS generate."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def symmetric_key_pair(given: SymmetricKeyBody | None, kept: Json | None = None) -> Json:
    """The keys a client sent; a missing one is kept from before, else generated.

    Keeping means a PUT that omits the keys (``{"type": "symmetricKey"}``) does not lock
    out the devices that use them; send new keys explicitly to roll them.
    """
    keys = given or SymmetricKeyBody()
    old = kept or {}
    return {
        "primaryKey": keys.primary_key or old.get("primaryKey") or new_symmetric_key(),
        "secondaryKey": keys.secondary_key or old.get("secondaryKey") or new_symmetric_key(),
    }


@router.get("/devices/{deviceId}/attestation", summary="Get a device's individual attestation")
async def get_attestation(device_id: DeviceId, caller: CallerDep) -> Json:
    device = caller.device(device_id)
    if device.attestation is None:
        group = device.enrollment_group_id or DEFAULT_GROUP
        raise NotFound(
            f"Device {device_id!r} has no individual attestation; it uses enrollment group "
            f"{group!r} (see /devices/{device_id}/credentials)."
        )
    return device.attestation


@router.put("/devices/{deviceId}/attestation", summary="Set a device's individual attestation")
async def put_attestation(device_id: DeviceId, body: AttestationBody, caller: CallerDep) -> Json:
    return _save(caller, caller.device(device_id), body)


@router.patch("/devices/{deviceId}/attestation", summary="Update a device's attestation")
async def patch_attestation(device_id: DeviceId, patch: MergePatch, caller: CallerDep) -> Json:
    device = caller.device(device_id)
    body = parse(AttestationBody, merge_patch(device.attestation or {}, patch))
    return _save(caller, device, body)


@router.delete(
    "/devices/{deviceId}/attestation",
    status_code=204,
    summary="Remove a device's individual attestation (back to its group's keys)",
)
async def delete_attestation(device_id: DeviceId, caller: CallerDep) -> None:
    device = caller.device(device_id)
    device.attestation = None
    caller.ctx.store.put_device(device)


@router.get("/devices/{deviceId}/credentials", summary="Get the credentials a device connects with")
async def get_credentials(device_id: DeviceId, caller: CallerDep) -> Json:
    device = caller.device(device_id)
    app = caller.ctx.store.get_app(caller.app_id)
    if app is None:
        raise NotFound(f"Application {caller.app_id!r} was not found.")
    credentials: Json = {"idScope": caller.ctx.id_scope_for(app)}
    keys = _keys(caller, device)
    if keys:
        credentials["symmetricKey"] = {"primaryKey": keys[0], "secondaryKey": keys[-1]}
    return credentials


def _save(caller: Caller, device: Device, body: AttestationBody) -> Json:
    if body.type != "symmetricKey":
        raise ValidationFailed(
            f"Attestation type {body.type!r} is not supported here; devices authenticate "
            "with 'symmetricKey' attestation."
        )
    kept = (device.attestation or {}).get("symmetricKey")
    device.attestation = {
        "type": "symmetricKey",
        "symmetricKey": symmetric_key_pair(body.symmetric_key, kept),
    }
    caller.ctx.store.put_device(device)
    return device.attestation


def _keys(caller: Caller, device: Device) -> list[str]:
    """Individual keys, else the group-derived ones (even if the group is disabled)."""
    individual = (device.attestation or {}).get("symmetricKey") or {}
    if individual:
        return [individual["primaryKey"], individual["secondaryKey"]]
    group_id = device.enrollment_group_id or DEFAULT_GROUP
    group = caller.ctx.store.get_group(caller.app_id, group_id)
    return derived_keys(group, device.id) if group is not None else []
