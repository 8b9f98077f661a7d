"""What a job does to one device: the same operation as the single-device API, one outcome.

* ``property``: the values are merged into the desired twin (``$version`` bumped) and
  pushed to the device if it is connected; an offline device gets them from its twin when
  it reconnects (the SDK reads the whole twin at connect). The device's outcome is
  ``completed`` as soon as the hub has stored the patch, online or not: the job records
  that the write was *made*; whether the device applied it is its acknowledgement, shown
  per property by ``GET /devices/{d}/properties/status``. Waiting for acknowledgements
  would hold every batch hostage to the slowest or an offline device.
* ``cloudProperty``: stored at once, never sent; ``completed``.
* ``command``: a direct method, as ``POST …/commands/{name}`` runs it: the device must be
  connected within ``connect_timeout`` (0 s by default: an offline device fails at once
  with "not connected") and answer within ``response_timeout``; a 2xx answer is
  ``completed``, any other status, or no answer, is ``failed`` with the reason. The run is
  kept in the device's command history like an API run.
* ``deviceTemplateMigration``: the device's template is changed (a ``templateAssigned``
  event with source ``job``); ``completed``.

Every operation re-reads the device: one deleted since the job was created, or moved to
another template than the job's ``target``, fails with that reason.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from aislehub.errors import ApiError, NotFound
from aislehub.hub.hub import DeviceHub
from aislehub.hub.lifecycle import device_changes
from aislehub.jobs.model import Json
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.jobs import COMPLETED, FAILED, DeviceOutcome
from aislehub.store.metadata import Device
from aislehub.store.rows import iso_stamp, utcnow


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Direct-method timeouts of command jobs (IoT Central's command defaults: 0 s and 30 s)."""

    connect: float = 0.0
    response: float = 30.0


DEFAULT_TIMEOUTS = Timeouts()


class DeviceFailed(Exception):
    """One device's operation failed; the message is the reason shown for it."""


async def run_on_device(
    hub: DeviceHub, app_id: str, device_id: str, data: list[Json], timeouts: Timeouts
) -> DeviceOutcome:
    try:
        device = _device(hub, app_id, device_id, data[0].get("target"))
        kind = data[0]["type"]
        if kind == "property":
            _set_properties(hub, device, data)
        elif kind == "cloudProperty":
            _set_cloud_properties(hub, device, data)
        elif kind == "command":
            for item in data:
                await _run_command(hub, device, item, timeouts)
        elif kind == "deviceTemplateMigration":
            _migrate(hub, device, data[-1]["template"])
        else:
            raise DeviceFailed(f"Job data of type {kind!r} cannot run.")
    except DeviceFailed as exc:
        return DeviceOutcome(device_id, FAILED, str(exc))
    except ApiError as exc:
        return DeviceOutcome(device_id, FAILED, exc.message)
    return DeviceOutcome(device_id, COMPLETED)


def _device(hub: DeviceHub, app_id: str, device_id: str, target: str | None) -> Device:
    device = hub.store.get_device(app_id, device_id)
    if device is None:
        raise DeviceFailed(f"Device {device_id!r} was deleted.")
    if target is not None and device.template != target:
        raise DeviceFailed(
            f"Device {device_id!r} no longer uses device template {target!r} "
            f"(it uses {device.template!r})."
        )
    return device


def _path(hub: DeviceHub, device: Device, path: str) -> tuple[str | None, str]:
    template = hub.templates.for_device(device)
    component, dot, name = path.partition(".")
    if dot and template is not None and component in template.model.components:
        return component, name
    return None, path


def _set_properties(hub: DeviceHub, device: Device, data: list[Json]) -> None:
    patch: Json = {}
    for item in data:
        component, name = _path(hub, device, item["path"])
        if component is None:
            patch[name] = item["value"]
        else:
            patch.setdefault(component, {"__t": "c"})[name] = item["value"]
    hub.patch_desired((device.app_id, device.id, ""), patch)


def _set_cloud_properties(hub: DeviceHub, device: Device, data: list[Json]) -> None:
    store = hub.store.cloud
    current = store.get(device.app_id, device.id)
    stamp = iso_stamp(utcnow())
    values, updated = dict(current.values), dict(current.updated)
    for item in data:
        values[item["path"]] = item["value"]
        updated[item["path"]] = stamp
    store.save(device.app_id, device.id, CloudValues(values, updated))


async def _run_command(hub: DeviceHub, device: Device, item: Json, timeouts: Timeouts) -> None:
    component, name = _path(hub, device, item["path"])
    method = f"{component}*{name}" if component else name
    request: Any = item.get("value")
    try:
        result = await hub.invoke_method(  # here, or in the process holding the device
            (device.app_id, device.id, ""),
            method,
            request,
            response_timeout=timeouts.response,
            connect_timeout=timeouts.connect,
        )
    except NotFound:
        raise DeviceFailed(
            f"Device {device.id!r} was not connected within {timeouts.connect:g} s "
            f"(connection timeout); {item['path']!r} was not sent."
        ) from None
    run: Json = {
        "id": str(uuid.uuid4()),
        "connectionTimeout": timeouts.connect,
        "responseTimeout": timeouts.response,
        "request": request,
        "response": result.payload,
        "responseCode": result.status,
    }
    if request is None:
        del run["request"]
    hub.store.add_command(device.app_id, device.id, "", component or "", name, run)
    if not 200 <= result.status < 300:
        raise DeviceFailed(
            f"Device {device.id!r} answered {item['path']!r} with status {result.status}"
            + (f": {result.payload}" if result.payload is not None else "")
        )


def _migrate(hub: DeviceHub, device: Device, template: str) -> None:
    if device.template == template:
        return
    before = dataclasses.replace(device)
    device.template = template
    saved = hub.store.put_device(device)
    for kind, detail in device_changes(before, saved, "job"):
        hub.store.add_event(device.app_id, device.id, kind, detail)
