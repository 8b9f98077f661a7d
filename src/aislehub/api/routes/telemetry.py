"""Telemetry: IoT Central's last-known value at four scopes (§2.6), and our history query.

``GET .../telemetry/{t}`` → ``{"value", "timestamp"}``, 404 if the device never sent ``t``.
``GET /devices/{d}/telemetry/{t}/history?from=&to=&limit=&component=&module=`` (ours) →
``{"value": [{"timestamp", "value"}, ...], "unit"?}``, oldest first, ``from <= ts < to``;
``unit`` is the template's unit for the field, when it declares one.
``GET /devices/{d}/unmodeledTelemetry`` (ours) → the fields typed ingest kept aside
(not in the template, or not fitting its schema), grouped by field and reason.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from aislehub.api.deps import Caller, CallerDep, DeviceId
from aislehub.api.views import iso_ms
from aislehub.errors import BadRequest, NotFound

Json = dict[str, Any]
Component = Annotated[str, Path(alias="componentName")]
Module = Annotated[str, Path(alias="moduleName")]
Telemetry = Annotated[str, Path(alias="telemetryName")]

# A history query reads at most this many points; past it, page by time (`from`).
MAX_HISTORY = 100_000
DEFAULT_HISTORY = 1000
DEFAULT_WINDOW = timedelta(days=1)

router = APIRouter(tags=["Device telemetry"])


@router.get(
    "/devices/{deviceId}/telemetry/{telemetryName}",
    summary="Get a telemetry value's last known value",
)
async def device_telemetry(device_id: DeviceId, name: Telemetry, caller: CallerDep) -> Json:
    return await _latest(caller, device_id, None, None, name)


@router.get(
    "/devices/{deviceId}/components/{componentName}/telemetry/{telemetryName}",
    summary="Get a component telemetry value's last known value",
)
async def component_telemetry(
    device_id: DeviceId,
    component: Component,
    name: Telemetry,
    caller: CallerDep,
) -> Json:
    return await _latest(caller, device_id, None, component, name)


@router.get(
    "/devices/{deviceId}/modules/{moduleName}/telemetry/{telemetryName}",
    summary="Get a module telemetry value's last known value",
)
async def module_telemetry(
    device_id: DeviceId,
    module: Module,
    name: Telemetry,
    caller: CallerDep,
) -> Json:
    return await _latest(caller, device_id, module, None, name)


@router.get(
    "/devices/{deviceId}/modules/{moduleName}/components/{componentName}/telemetry/{telemetryName}",
    summary="Get a module component telemetry value's last known value",
)
async def module_component_telemetry(
    device_id: DeviceId,
    module: Module,
    component: Component,
    name: Telemetry,
    caller: CallerDep,
) -> Json:
    return await _latest(caller, device_id, module, component, name)


@router.get(
    "/devices/{deviceId}/telemetry/{telemetryName}/history",
    summary="Get a telemetry value's history (aislehub extension)",
)
async def telemetry_history(
    device_id: DeviceId,
    name: Telemetry,
    caller: CallerDep,
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; default to - 1 day")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="ISO 8601, exclusive; default now")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = DEFAULT_HISTORY,
    component: str | None = None,
    module: str | None = None,
) -> Json:
    device = caller.device(device_id)
    until = _time("to", end) if end else datetime.now(UTC)
    since = _time("from", start) if start else until - DEFAULT_WINDOW
    if since > until:
        raise BadRequest(f"'from' ({iso_ms(since)}) is after 'to' ({iso_ms(until)}).")
    # DuckDB releases the GIL while it scans: queries run in a worker thread, off the loop.
    rows = await asyncio.to_thread(
        caller.telemetry.range,
        caller.app_id,
        device_id,
        name,
        since,
        until,
        limit,
        component,
        module,
    )
    body: Json = {"value": [{"timestamp": iso_ms(ts), "value": value} for ts, value in rows]}
    template = None if module else caller.template_of(device)
    declared = template.model.telemetry(component, name) if template else None
    if declared is not None and declared.unit is not None:
        body["unit"] = declared.unit
    return body


@router.get(
    "/devices/{deviceId}/unmodeledTelemetry",
    summary="Telemetry fields kept aside by typed ingest (aislehub extension)",
)
async def unmodeled_telemetry(device_id: DeviceId, caller: CallerDep) -> Json:
    caller.device(device_id)
    fields = await asyncio.to_thread(caller.telemetry.unmodeled, caller.app_id, device_id)
    value = [
        {
            "component": f.component,
            "module": f.module_id,
            "name": f.name,
            "reason": f.reason,
            "count": f.count,
            "lastTimestamp": iso_ms(f.last_ts),
            "lastValue": f.last_value,
        }
        for f in fields
    ]
    return {
        "unknownCount": sum(f.count for f in fields if f.reason == "unknown"),
        "mistypedCount": sum(f.count for f in fields if f.reason == "mistyped"),
        "value": value,
    }


async def _latest(
    caller: Caller,
    device_id: str,
    module: str | None,
    component: str | None,
    name: str,
) -> Json:
    caller.device(device_id)
    found = await asyncio.to_thread(
        caller.telemetry.latest, caller.app_id, device_id, name, component, module
    )
    if found is None:
        where = f"component {component!r} of " if component else ""
        raise NotFound(
            f"No value of telemetry {name!r} has been received from {where}device {device_id!r}."
        )
    value, ts = found
    return {"value": value, "timestamp": iso_ms(ts)}


def _time(param: str, text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{param!r} must be an ISO 8601 time such as 2024-05-01T12:00:00Z, not {text!r}."
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
