"""``/deviceGroups`` and their dynamic membership (contract §2.9, filter grammar §5.1).

A group is stored with its filter text as given; the filter is parsed on every write (a bad
one is a 400 naming the position) and on every membership read, then evaluated by the
metadata store as a WHERE clause, so ``/deviceGroups/{id}/devices`` pages through the
devices that match *now*.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from aislehub.api.deps import Caller, CallerDep, IfMatch, MergePatch
from aislehub.api.models import DeviceGroupBody, check_etag, parse
from aislehub.api.paging import paged
from aislehub.api.views import device_group_view, device_view
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.twins import merge_patch
from aislehub.query.device_filter import parse_device_filter
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.device_groups import DeviceGroup

Json = dict[str, Any]
_GROUP_ID = re.compile(r"[a-zA-Z0-9_-]{1,255}")  # the spec's deviceGroupId (§1.10)

router = APIRouter(tags=["Device groups"])


async def group_id_param(group_id: Annotated[str, Path(alias="deviceGroupId")]) -> str:
    if not _GROUP_ID.fullmatch(group_id):
        raise BadRequest(
            f"Device group id {group_id!r} is invalid: use 1 to 255 letters, digits, '_' or '-'."
        )
    return group_id


GroupId = Annotated[str, Depends(group_id_param)]
_ONE = "/deviceGroups/{deviceGroupId}"


@router.get("/deviceGroups", summary="List device groups")
async def list_groups(request: Request, caller: CallerDep) -> Json:
    groups = caller.ctx.store.groups
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: groups.page(caller.app_id, offset, limit),
        device_group_view,
    )


@router.get(_ONE, summary="Get a device group")
async def get_group(group_id: GroupId, caller: CallerDep) -> Json:
    return device_group_view(_find(caller, group_id))


@router.put(_ONE, summary="Create or replace a device group")
async def put_group(
    group_id: GroupId, body: DeviceGroupBody, caller: CallerDep, if_match: IfMatch = None
) -> Json:
    current = caller.ctx.store.groups.get(caller.app_id, group_id)
    return device_group_view(_save(caller, group_id, current, body, if_match))


@router.patch(_ONE, summary="Update a device group (JSON merge patch)")
async def patch_group(
    group_id: GroupId, patch: MergePatch, caller: CallerDep, if_match: IfMatch = None
) -> Json:
    current = _find(caller, group_id)
    body = parse(DeviceGroupBody, merge_patch(device_group_view(current), patch))
    return device_group_view(_save(caller, group_id, current, body, if_match))


@router.delete(_ONE, status_code=204, summary="Delete a device group")
async def delete_group(group_id: GroupId, caller: CallerDep) -> None:
    if not caller.ctx.store.groups.delete(caller.app_id, group_id):
        raise NotFound(f"Device group {group_id!r} was not found.")


@router.get(_ONE + "/devices", summary="List the devices a group's filter matches now")
async def group_devices(request: Request, group_id: GroupId, caller: CallerDep) -> Json:
    where = filter_clause(parse_device_filter(_find(caller, group_id).filter))
    store = caller.ctx.store
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.list_devices(caller.app_id, offset, limit, where),
        device_view,
    )


def _find(caller: Caller, group_id: str) -> DeviceGroup:
    group = caller.ctx.store.groups.get(caller.app_id, group_id)
    if group is None:
        raise NotFound(f"Device group {group_id!r} was not found.")
    return group


def _save(
    caller: Caller,
    group_id: str,
    current: DeviceGroup | None,
    body: DeviceGroupBody,
    if_match: str | None,
) -> DeviceGroup:
    if current is not None:
        check_etag(current.etag, if_match, body.etag)
    parse_device_filter(body.filter)
    group = DeviceGroup(
        caller.app_id,
        group_id,
        body.display_name,
        body.filter,
        body.description,
        list(body.organizations),
    )
    if current is not None:
        group.created_at = current.created_at
    return caller.ctx.store.groups.put(group)
