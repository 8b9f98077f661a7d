"""``/dashboards`` (contract §3.6): dashboards stored as given, drawn by the operator UI.

A dashboard is IoT Central's ``Dashboard`` (``displayName``, ``tiles``, ``favorite``,
``organizations``) or the simpler tile form of ``docs/templates-format.md`` (tiles with a
``type``, a ``template`` the dashboard belongs to); either way the tiles are opaque here
and ``id`` and ``etag`` are the server's. PATCH merges (RFC 7386).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from aislehub.api.deps import Caller, CallerDep, MergePatch
from aislehub.api.paging import paged_list
from aislehub.errors import BadRequest, NotFound
from aislehub.store.users import Dashboard, DashboardStore

Json = dict[str, Any]
DashboardId = Annotated[str, Path(alias="dashboardId")]
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_TILES = 100

router = APIRouter(tags=["Dashboards"])


def dashboard_store(caller: Caller) -> DashboardStore:
    return DashboardStore(caller.ctx.store.engine)


def dashboard_json(dashboard: Dashboard) -> Json:
    return {**dashboard.document, "id": dashboard.id, "etag": dashboard.etag}


def check_dashboard(dashboard_id: str, body: Json) -> Json:
    """The document to store, or BadRequest (contract §3.6's limits)."""
    if not _ID.fullmatch(dashboard_id):
        raise BadRequest(f"Dashboard id {dashboard_id!r} is invalid: use A-Z a-z 0-9 _ . -")
    name = body.get("displayName")
    if not isinstance(name, str) or not name:
        raise BadRequest("A dashboard needs a non-empty 'displayName'.")
    tiles = body.get("tiles", [])
    if not isinstance(tiles, list) or len(tiles) > MAX_TILES:
        raise BadRequest(f"'tiles' is a list of at most {MAX_TILES} tiles.")
    if not all(isinstance(t, dict) for t in tiles):
        raise BadRequest("Each tile is an object.")
    document = {k: v for k, v in body.items() if k not in ("id", "etag", "personal")}
    return {**document, "tiles": tiles, "personal": False}


@router.get("/dashboards", summary="List dashboards")
async def list_dashboards(request: Request, caller: CallerDep) -> Json:
    items = [dashboard_json(d) for d in dashboard_store(caller).in_app(caller.app_id)]
    return paged_list(request, caller.ctx.public_base_url, items)


@router.get("/dashboards/{dashboardId}", summary="Get a dashboard")
async def get_dashboard(dashboard_id: DashboardId, caller: CallerDep) -> Json:
    return dashboard_json(_find(caller, dashboard_id))


@router.put("/dashboards/{dashboardId}", summary="Create or replace a dashboard")
async def put_dashboard(dashboard_id: DashboardId, body: MergePatch, caller: CallerDep) -> Json:
    document = check_dashboard(dashboard_id, body)
    stored = dashboard_store(caller).put(Dashboard(caller.app_id, dashboard_id, document))
    return dashboard_json(stored)


@router.patch("/dashboards/{dashboardId}", summary="Update a dashboard")
async def patch_dashboard(dashboard_id: DashboardId, body: MergePatch, caller: CallerDep) -> Json:
    current = _find(caller, dashboard_id)
    document = check_dashboard(dashboard_id, _merge(current.document, body))
    stored = dashboard_store(caller).put(Dashboard(caller.app_id, dashboard_id, document))
    return dashboard_json(stored)


@router.delete("/dashboards/{dashboardId}", status_code=204, summary="Delete a dashboard")
async def delete_dashboard(dashboard_id: DashboardId, caller: CallerDep) -> None:
    if not dashboard_store(caller).delete(caller.app_id, dashboard_id):
        raise NotFound(f"Dashboard {dashboard_id!r} was not found.")


def _find(caller: Caller, dashboard_id: str) -> Dashboard:
    found = dashboard_store(caller).get(caller.app_id, dashboard_id)
    if found is None:
        raise NotFound(f"Dashboard {dashboard_id!r} was not found.")
    return found


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged
