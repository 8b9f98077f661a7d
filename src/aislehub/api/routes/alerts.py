"""``/alerts``: what the rules raised, filtered and paged; acknowledge and resolve.

Lifecycle: ``open`` → ``acknowledged`` (by the caller's token) → ``resolved`` (by the
rule when its condition clears, or by a caller). Acknowledging an acknowledged alert is a
no-op; acknowledging or resolving a resolved one is a 409. Each alert carries its actions'
outcomes: state and every attempt.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from aislehub.api.deps import Caller, CallerDep
from aislehub.api.paging import paged
from aislehub.errors import BadRequest, Conflict, NotFound
from aislehub.store.rows import iso_stamp
from aislehub.store.rules import ALERT_STATES, ActionOutcome, Alert, AlertFilter, RuleStore

Json = dict[str, Any]
router = APIRouter(tags=["Alerts"])
AlertId = Annotated[str, Path(alias="alertId", max_length=64)]
_SEVERITIES = ("info", "warning", "critical")


def _stamp(value: Any) -> str | None:
    return iso_stamp(value) if value is not None else None


def action_view(outcome: ActionOutcome) -> Json:
    return {"type": outcome.type, "state": outcome.state, "attempts": outcome.attempts}


def alert_view(alert: Alert) -> Json:
    return {
        "id": alert.id,
        "rule": alert.rule_id,
        "device": alert.device_id,
        "severity": alert.severity,
        "state": alert.state,
        "opened": iso_stamp(alert.opened_at),
        "acknowledged": _stamp(alert.acknowledged_at),
        "acknowledgedBy": alert.acknowledged_by,
        "resolved": _stamp(alert.resolved_at),
        "resolvedBy": alert.resolved_by,
        "detail": alert.detail,
        "actions": [action_view(a) for a in alert.actions],
    }


@router.get("/alerts", summary="List alerts, newest first")
async def list_alerts(
    request: Request,
    caller: CallerDep,
    state: Annotated[str | None, Query()] = None,
    severity: Annotated[str | None, Query()] = None,
    rule: Annotated[str | None, Query()] = None,
    device: Annotated[str | None, Query()] = None,
) -> Json:
    if state is not None and state not in ALERT_STATES:
        raise BadRequest(f"state must be one of {', '.join(ALERT_STATES)}, not {state!r}.")
    if severity is not None and severity not in _SEVERITIES:
        raise BadRequest(f"severity must be one of {', '.join(_SEVERITIES)}, not {severity!r}.")
    where = AlertFilter(state, severity, rule, device)
    store = RuleStore(caller.ctx.store.engine)
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.alerts(caller.app_id, where, offset, limit),
        alert_view,
    )


@router.get("/alerts/{alertId}", summary="Get an alert")
async def get_alert(alert_id: AlertId, caller: CallerDep) -> Json:
    return alert_view(_find(caller, alert_id))


@router.post("/alerts/{alertId}/acknowledge", summary="Acknowledge an open alert")
async def acknowledge(alert_id: AlertId, caller: CallerDep) -> Json:
    if _find(caller, alert_id).state == "resolved":
        raise Conflict(f"Alert {alert_id!r} is resolved already.")
    store = RuleStore(caller.ctx.store.engine)
    return alert_view(_found(store.acknowledge(caller.app_id, alert_id, caller.token.id), alert_id))


@router.post("/alerts/{alertId}/resolve", summary="Resolve an alert")
async def resolve(alert_id: AlertId, caller: CallerDep) -> Json:
    if _find(caller, alert_id).state == "resolved":
        raise Conflict(f"Alert {alert_id!r} is resolved already.")
    store = RuleStore(caller.ctx.store.engine)
    return alert_view(_found(store.resolve(caller.app_id, alert_id, caller.token.id), alert_id))


def _find(caller: Caller, alert_id: str) -> Alert:
    return _found(RuleStore(caller.ctx.store.engine).alert(caller.app_id, alert_id), alert_id)


def _found(alert: Alert | None, alert_id: str) -> Alert:
    if alert is None:
        raise NotFound(f"Alert {alert_id!r} was not found.")
    return alert
