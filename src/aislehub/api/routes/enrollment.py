"""``/enrollmentGroups`` (contract §2.10).

Creating a group with just ``{"type": "symmetricKey"}`` generates both keys; replacing it
without keys keeps the ones it has, so a PUT that only renames a group does not lock out
every device enrolled through it. ``x509`` groups are stored with ``signingCertificates: {}``
(the certificate routes are not served yet).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from aislehub.api.deps import Caller, CallerDep, IfMatch, MergePatch
from aislehub.api.models import EnrollmentGroupBody, GroupAttestationBody, check_etag, parse
from aislehub.api.paging import paged_list
from aislehub.api.routes.attestation import symmetric_key_pair
from aislehub.api.views import group_view
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.twins import merge_patch
from aislehub.store.metadata import EnrollmentGroup

Json = dict[str, Any]
_GROUP_ID = re.compile(r"[a-zA-Z0-9-]{1,255}")  # the spec's enrollmentGroupId (§1.10)

router = APIRouter(tags=["Enrollment groups"])


async def group_id_param(group_id: Annotated[str, Path(alias="enrollmentGroupId")]) -> str:
    if not _GROUP_ID.fullmatch(group_id):
        raise BadRequest(
            f"Enrollment group id {group_id!r} is invalid: use 1 to 255 letters, digits or '-'."
        )
    return group_id


GroupId = Annotated[str, Depends(group_id_param)]


@router.get("/enrollmentGroups", summary="List enrollment groups")
async def list_groups(request: Request, caller: CallerDep) -> Json:
    groups = [group_view(g) for g in caller.ctx.store.list_groups(caller.app_id)]
    return paged_list(request, caller.ctx.public_base_url, groups)


@router.get("/enrollmentGroups/{enrollmentGroupId}", summary="Get an enrollment group")
async def get_group(group_id: GroupId, caller: CallerDep) -> Json:
    return group_view(_find(caller, group_id))


@router.put(
    "/enrollmentGroups/{enrollmentGroupId}", summary="Create or replace an enrollment group"
)
async def put_group(
    group_id: GroupId,
    body: EnrollmentGroupBody,
    caller: CallerDep,
    if_match: IfMatch = None,
) -> Json:
    current = caller.ctx.store.get_group(caller.app_id, group_id)
    return group_view(_save(caller, group_id, current, body, if_match))


@router.patch(
    "/enrollmentGroups/{enrollmentGroupId}", summary="Update an enrollment group (JSON merge patch)"
)
async def patch_group(
    group_id: GroupId,
    patch: MergePatch,
    caller: CallerDep,
    if_match: IfMatch = None,
) -> Json:
    current = _find(caller, group_id)
    body = parse(EnrollmentGroupBody, merge_patch(group_view(current), patch))
    return group_view(_save(caller, group_id, current, body, if_match))


@router.delete(
    "/enrollmentGroups/{enrollmentGroupId}", status_code=204, summary="Delete an enrollment group"
)
async def delete_group(group_id: GroupId, caller: CallerDep) -> None:
    if not caller.ctx.store.delete_group(caller.app_id, group_id):
        raise NotFound(f"Enrollment group {group_id!r} was not found.")


def _find(caller: Caller, group_id: str) -> EnrollmentGroup:
    group = caller.ctx.store.get_group(caller.app_id, group_id)
    if group is None:
        raise NotFound(f"Enrollment group {group_id!r} was not found.")
    return group


def _save(
    caller: Caller,
    group_id: str,
    current: EnrollmentGroup | None,
    body: EnrollmentGroupBody,
    if_match: str | None,
) -> EnrollmentGroup:
    if current is not None:
        check_etag(current.etag, if_match, body.etag)
    old = current.attestation if current is not None else {}
    group = EnrollmentGroup(
        caller.app_id,
        group_id,
        body.display_name,
        type=body.type,
        enabled=body.enabled,
        attestation=_attestation(body.attestation, old),
    )
    return caller.ctx.store.put_group(group)


def _attestation(body: GroupAttestationBody, old: Json) -> Json:
    if body.type == "x509":
        certs = (old.get("x509") or {}).get("signingCertificates", {})
        return {"type": "x509", "x509": {"signingCertificates": certs}}
    return {
        "type": "symmetricKey",
        "symmetricKey": symmetric_key_pair(body.symmetric_key, old.get("symmetricKey")),
    }
