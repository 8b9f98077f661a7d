"""``/rules``: our API (IoT Central has no public one), shaped like its other collections.

A rule is the document of docs/templates-format.md; PUT and PATCH parse it whole and check
it against its target template (400 ``InvalidRule`` naming each JSON path). The rules
engine polls for writes and applies them within a second, without a restart (hot reload).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from aislehub.api.deps import Caller, CallerDep, IfMatch, MergePatch
from aislehub.api.models import check_etag
from aislehub.api.paging import paged
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.twins import merge_patch
from aislehub.rules.model import RuleInvalid, check_against_template, parse_rule
from aislehub.store.rows import iso_stamp
from aislehub.store.rules import RuleRecord, RuleStore

Json = dict[str, Any]
_RULE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?")

router = APIRouter(tags=["Rules"])


async def rule_id_param(rule_id: Annotated[str, Path(alias="ruleId")]) -> str:
    if not _RULE_ID.fullmatch(rule_id):
        raise BadRequest(
            f"Rule id {rule_id!r} is invalid: use a lower-case slug (a-z, 0-9, '-'), "
            "at most 128 characters."
        )
    return rule_id


RuleId = Annotated[str, Depends(rule_id_param)]
_ONE = "/rules/{ruleId}"


def rule_view(record: RuleRecord) -> Json:
    return {
        **record.document,
        "id": record.id,
        "enabled": record.enabled,
        "etag": record.etag,
        "created": iso_stamp(record.created_at),
        "updated": iso_stamp(record.updated_at),
    }


def rules_of(caller: Caller) -> RuleStore:
    return RuleStore(caller.ctx.store.engine)


@router.get("/rules", summary="List rules")
async def list_rules(request: Request, caller: CallerDep) -> Json:
    store = rules_of(caller)
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.page(caller.app_id, offset, limit),
        rule_view,
    )


@router.get(_ONE, summary="Get a rule")
async def get_rule(rule_id: RuleId, caller: CallerDep) -> Json:
    return rule_view(_find(caller, rule_id))


@router.put(_ONE, summary="Create or replace a rule")
async def put_rule(
    rule_id: RuleId,
    caller: CallerDep,
    body: Annotated[Json, Body()],
    if_match: IfMatch = None,
) -> Json:
    current = rules_of(caller).get(caller.app_id, rule_id)
    return rule_view(save_rule(caller, rule_id, current, body, if_match))


@router.patch(_ONE, summary="Update a rule (JSON merge patch)")
async def patch_rule(
    rule_id: RuleId, patch: MergePatch, caller: CallerDep, if_match: IfMatch = None
) -> Json:
    current = _find(caller, rule_id)
    body = merge_patch(rule_view(current), patch)
    return rule_view(save_rule(caller, rule_id, current, body, if_match))


@router.delete(_ONE, status_code=204, summary="Delete a rule (its open alerts resolve)")
async def delete_rule(rule_id: RuleId, caller: CallerDep) -> None:
    if not rules_of(caller).delete(caller.app_id, rule_id):
        raise NotFound(f"Rule {rule_id!r} was not found.")


def _find(caller: Caller, rule_id: str) -> RuleRecord:
    found = rules_of(caller).get(caller.app_id, rule_id)
    if found is None:
        raise NotFound(f"Rule {rule_id!r} was not found.")
    return found


_READ_ONLY = ("etag", "created", "updated")


def save_rule(
    caller: Caller, rule_id: str, current: RuleRecord | None, body: Json, if_match: str | None
) -> RuleRecord:
    if current is not None:
        etag = body.get("etag")
        check_etag(current.etag, if_match, etag if isinstance(etag, str) else None)
    document = {k: v for k, v in body.items() if k not in _READ_ONLY}
    document["id"] = rule_id
    rule = parse_rule(document, rule_id)
    check_against_template(rule, caller.ctx.hub.templates.get(caller.app_id, rule.target.template))
    group = rule.target.device_group
    if group is not None and caller.ctx.store.groups.get(caller.app_id, group) is None:
        raise RuleInvalid([("$.target.deviceGroup", f"device group {group!r} was not found")])
    record = RuleRecord(caller.app_id, rule_id, rule.enabled, document)
    if current is not None:
        record.created_at = current.created_at
    return rules_of(caller).put(record)
