"""Run commands and read their history at four scopes (contract §2.5).

A command is an IoT Hub direct method, run synchronously: wait up to ``connectionTimeout``
for the device to connect, then up to ``responseTimeout`` for its answer. A component
command ``cmd`` of component ``c`` is the method ``c*cmd`` (IoT Plug and Play convention).
Outcomes: 201 with the device's answer; 404 ``DeviceNotOnline`` if the device never
connected in time; 504 if it did not answer in time.

When the device has a template, the command must be in it (else 404) and ``request`` must fit
its request schema (else 422), checked before anything is sent (``hub.template_checks``).
Module commands are not modeled by templates here and are not checked.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request

from aislehub.api.deps import Caller, CallerDep, DeviceId
from aislehub.api.models import CommandBody
from aislehub.api.paging import paged_list
from aislehub.errors import NotFound
from aislehub.hub.template_checks import check_command

Json = dict[str, Any]
Component = Annotated[str, Path(alias="componentName")]
Module = Annotated[str, Path(alias="moduleName")]
CommandName = Annotated[str, Path(alias="commandName")]
OptionalBody = Annotated[CommandBody | None, Body()]

router = APIRouter(tags=["Device commands"])

_DEVICE = "/devices/{deviceId}/commands/{commandName}"
_COMPONENT = "/devices/{deviceId}/components/{componentName}/commands/{commandName}"
_MODULE = "/devices/{deviceId}/modules/{moduleName}/commands/{commandName}"
_MODULE_COMPONENT = (
    "/devices/{deviceId}/modules/{moduleName}/components/{componentName}/commands/{commandName}"
)


class DeviceNotOnline(NotFound):
    code = "DeviceNotOnline"


@router.post(_DEVICE, status_code=201, summary="Run a device command")
async def run_device_command(
    device_id: DeviceId,
    name: CommandName,
    caller: CallerDep,
    body: OptionalBody = None,
) -> Json:
    return await _run(caller, device_id, None, None, name, body)


@router.get(_DEVICE, summary="Get a device command's last run")
async def device_command_history(
    request: Request,
    device_id: DeviceId,
    name: CommandName,
    caller: CallerDep,
) -> Json:
    return _history(request, caller, device_id, None, None, name)


@router.post(_COMPONENT, status_code=201, summary="Run a component command")
async def run_component_command(
    device_id: DeviceId,
    component: Component,
    name: CommandName,
    caller: CallerDep,
    body: OptionalBody = None,
) -> Json:
    return await _run(caller, device_id, None, component, name, body)


@router.get(_COMPONENT, summary="Get a component command's last run")
async def component_command_history(
    request: Request,
    device_id: DeviceId,
    component: Component,
    name: CommandName,
    caller: CallerDep,
) -> Json:
    return _history(request, caller, device_id, None, component, name)


@router.post(_MODULE, status_code=201, summary="Run a module command")
async def run_module_command(
    device_id: DeviceId,
    module: Module,
    name: CommandName,
    caller: CallerDep,
    body: OptionalBody = None,
) -> Json:
    return await _run(caller, device_id, module, None, name, body)


@router.get(_MODULE, summary="Get a module command's last run")
async def module_command_history(
    request: Request,
    device_id: DeviceId,
    module: Module,
    name: CommandName,
    caller: CallerDep,
) -> Json:
    return _history(request, caller, device_id, module, None, name)


@router.post(_MODULE_COMPONENT, status_code=201, summary="Run a module component command")
async def run_module_component_command(
    device_id: DeviceId,
    module: Module,
    component: Component,
    name: CommandName,
    caller: CallerDep,
    body: OptionalBody = None,
) -> Json:
    return await _run(caller, device_id, module, component, name, body)


@router.get(_MODULE_COMPONENT, summary="Get a module component command's last run")
async def module_component_command_history(
    request: Request,
    device_id: DeviceId,
    module: Module,
    component: Component,
    name: CommandName,
    caller: CallerDep,
) -> Json:
    return _history(request, caller, device_id, module, component, name)


async def _run(
    caller: Caller,
    device_id: str,
    module: str | None,
    component: str | None,
    name: str,
    body: CommandBody | None,
) -> Json:
    device = caller.device(device_id)
    command = body or CommandBody()
    if module is None:
        check_command(caller.template_of(device), component, name, command.request)
    method = f"{component}*{name}" if component else name
    try:
        result = await caller.ctx.hub.invoke_method(
            caller.key(device_id, module),
            method,
            command.request,
            response_timeout=command.response_timeout,
            connect_timeout=command.connection_timeout,
        )
    except NotFound as exc:
        raise DeviceNotOnline(exc.message) from None
    run: Json = {
        "id": str(uuid.uuid4()),
        "connectionTimeout": command.connection_timeout,
        "responseTimeout": command.response_timeout,
        "request": command.request,
        "response": result.payload,
        "responseCode": result.status,
    }
    if command.request is None:
        del run["request"]  # a parameterless command (§2.5)
    caller.ctx.store.add_command(caller.app_id, device_id, module or "", component or "", name, run)
    return run


def _history(
    request: Request,
    caller: Caller,
    device_id: str,
    module: str | None,
    component: str | None,
    name: str,
) -> Json:
    device = caller.device(device_id)
    if module is None:
        check_command(caller.template_of(device), component, name, None)
    runs = caller.ctx.store.command_history(
        caller.app_id, device_id, module or "", component or "", name
    )
    return paged_list(request, caller.ctx.public_base_url, runs)
