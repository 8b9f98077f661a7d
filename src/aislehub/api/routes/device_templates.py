"""``/deviceTemplates`` (contract §2.8), plus our ``/deviceTemplates/{id}/versions``.

PUT creates or replaces and publishes; PATCH merges (RFC 7386, arrays replace wholesale)
onto the stored document. Both validate the whole result with the DTDL parser (400 naming
each error's path and rule) and store it as a new version; the previous versions are kept
and listed, newest first, by ``GET /deviceTemplates/{id}/versions`` (ours). DELETE of a
template that devices use is a 409, as IoT Central refuses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from aislehub.api.deps import Caller, CallerDep, IfMatch, MergePatch, TemplateId
from aislehub.api.models import check_etag
from aislehub.api.paging import paged
from aislehub.api.views import template_version_view, template_view
from aislehub.errors import NotFound
from aislehub.hub.twins import merge_patch
from aislehub.store.templates import TemplateRecord

Json = dict[str, Any]
TemplateBody = Annotated[dict[str, Any], Body()]

router = APIRouter(tags=["Device templates"])

_ONE = "/deviceTemplates/{deviceTemplateId}"


@router.get("/deviceTemplates", summary="List device templates")
async def list_templates(request: Request, caller: CallerDep) -> Json:
    templates = caller.ctx.store.templates
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: templates.page(caller.app_id, offset, limit),
        template_view,
    )


@router.get(_ONE, summary="Get a device template")
async def get_template(template_id: TemplateId, caller: CallerDep) -> Json:
    return template_view(_find(caller, template_id))


@router.put(_ONE, summary="Create or replace and publish a device template")
async def put_template(
    template_id: TemplateId, body: TemplateBody, caller: CallerDep, if_match: IfMatch = None
) -> Json:
    current = caller.ctx.store.templates.get(caller.app_id, template_id)
    return template_view(_save(caller, template_id, current, body, if_match))


@router.patch(_ONE, summary="Update a device template (JSON merge patch)")
async def patch_template(
    template_id: TemplateId, patch: MergePatch, caller: CallerDep, if_match: IfMatch = None
) -> Json:
    current = _find(caller, template_id)
    merged = merge_patch(current.document, patch)
    return template_view(_save(caller, template_id, current, merged, if_match))


@router.delete(_ONE, status_code=204, summary="Delete a device template no device uses")
async def delete_template(template_id: TemplateId, caller: CallerDep) -> None:
    caller.ctx.hub.templates.delete(caller.app_id, template_id)


@router.get(_ONE + "/versions", summary="List a device template's versions (aislehub extension)")
async def list_versions(request: Request, template_id: TemplateId, caller: CallerDep) -> Json:
    _find(caller, template_id)
    templates = caller.ctx.store.templates
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: templates.versions(caller.app_id, template_id, offset, limit),
        template_version_view,
    )


def _find(caller: Caller, template_id: str) -> TemplateRecord:
    record = caller.ctx.store.templates.get(caller.app_id, template_id)
    if record is None:
        raise NotFound(f"Device template {template_id!r} was not found.")
    return record


def _save(
    caller: Caller,
    template_id: str,
    current: TemplateRecord | None,
    body: Json,
    if_match: str | None,
) -> TemplateRecord:
    if current is not None:
        etag = body.get("etag")
        check_etag(current.etag, if_match, etag if isinstance(etag, str) else None)
    return caller.ctx.hub.templates.publish(caller.app_id, template_id, body)
