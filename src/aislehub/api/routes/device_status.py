"""A device's status and history (aislehub extensions beside contract §2.1).

``GET /devices/{d}/connectivity`` → where the device stands now::

    {"status": "registered" | "provisioned" | "blocked",
     "connected": bool, "connectedModules": [...],
     "lastConnectedAt", "lastDisconnectedAt", "lastActivityAt"}   (ISO 8601 or null)

``lastActivityAt`` is the last packet from the device (its own connection, not its
modules'): live while it is connected, else as recorded when it disconnected.

``GET /devices/{d}/events?kind=connected&kind=disabled`` → the lifecycle and connectivity
events (:mod:`aislehub.hub.lifecycle`), newest first, paged with ``nextLink``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from aislehub.api.deps import CallerDep, DeviceId
from aislehub.api.paging import paged
from aislehub.api.views import iso_ms
from aislehub.errors import BadRequest
from aislehub.hub.lifecycle import LIFECYCLE_KINDS

Json = dict[str, Any]

EVENT_KINDS = (*LIFECYCLE_KINDS, "connected", "disconnected")

router = APIRouter(tags=["Device status (aislehub)"])


@router.get("/devices/{deviceId}/connectivity", summary="A device's status and connectivity")
async def connectivity(device_id: DeviceId, caller: CallerDep) -> Json:
    device = caller.device(device_id)
    hub, store = caller.ctx.hub, caller.ctx.store
    hub.flush_events()  # events are batched: store the queue before reading it back
    here = await hub.presence(caller.app_id, device_id)  # in whichever process holds it
    last: dict[str, tuple[Json, datetime]] = {}
    for kind, detail, at in store.events(
        caller.app_id, device_id, ("connected", "disconnected"), newest_first=True, limit=50
    ):
        if detail.get("module", "") == "" and kind not in last:
            last[kind] = (detail, at)
    activity: str | None = None
    if here.activity is not None:
        activity = iso_ms(datetime.fromtimestamp(here.activity, UTC))
    elif "disconnected" in last:
        activity = last["disconnected"][0].get("lastActivity")
    status = "provisioned" if device.provisioned else "registered"
    if not device.enabled:
        status = "blocked"
    return {
        "status": status,
        "connected": here.connected,
        "connectedModules": sorted(here.modules),
        "lastConnectedAt": iso_ms(last["connected"][1]) if "connected" in last else None,
        "lastDisconnectedAt": iso_ms(last["disconnected"][1]) if "disconnected" in last else None,
        "lastActivityAt": activity,
    }


@router.get("/devices/{deviceId}/events", summary="A device's lifecycle and connectivity events")
async def device_events(
    request: Request,
    device_id: DeviceId,
    caller: CallerDep,
    kind: Annotated[list[str] | None, Query(description="only these kinds (repeatable)")] = None,
) -> Json:
    caller.device(device_id)
    unknown = sorted(set(kind or ()) - set(EVENT_KINDS))
    if unknown:
        raise BadRequest(f"Unknown event kind(s) {unknown}; known: {', '.join(EVENT_KINDS)}.")
    caller.ctx.hub.flush_events()
    store = caller.ctx.store
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.events(
            caller.app_id, device_id, kind, newest_first=True, offset=offset, limit=limit
        ),
        lambda row: {"kind": row[0], "detail": row[1], "timestamp": iso_ms(row[2])},
    )
