"""What the overview, dashboards and inbox show, read from the stores (no HTTP here).

Tiles follow ``docs/templates-format.md``: ``kpi`` (devicesOnline, devicesOffline,
messagesToday, openAlerts, or an explorer query), ``lineChart`` (an explorer query drawn
in the browser), ``lkv`` (latest value per device), ``map`` (device locations drawn as
SVG: no tile server, works offline), ``alerts`` and ``table``. IoT Central's tile shape
(``configuration.type``) is read the same way; a type we do not draw is shown as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from aislehub.api.deps import Caller
from aislehub.models.elements import Telemetry
from aislehub.models.modelset import ResolvedModel
from aislehub.query.dialect import dialect_of
from aislehub.store import schema

__all__ = ["Tile", "fleet_figures", "inbox", "metric_names", "render_tiles", "telemetry_names"]

Json = dict[str, Any]
_NUMERIC = {"double", "float", "integer", "long"}


@dataclass(slots=True)
class Tile:
    type: str
    title: str
    spec: Json
    data: Any = None
    rows: list[Json] = field(default_factory=list)


def fleet_figures(caller: Caller, template: str | None = None) -> Json:
    """The fleet's counts; with ``template``, devices, online and offline count only the
    devices of that template (a template dashboard's KPIs)."""
    store, app_id = caller.ctx.store, caller.app_id
    connected = caller.ctx.hub.links.connected_devices(app_id)
    d = schema.devices.c
    stmt = sa.select(d.template, sa.func.count()).where(d.app_id == app_id).group_by(d.template)
    with store.engine.connect() as conn:
        per_template = sorted(((t or "", int(n)) for t, n in conn.execute(stmt)), key=_by_count)
        if template:
            ids = sa.select(d.id).where(d.app_id == app_id, d.template == template)
            members = {str(r[0]) for r in conn.execute(ids)}
            total, online = len(members), len(connected & members)
        else:
            total, online = store.count_devices(app_id), len(connected)
    return {
        "devices": total,
        "online": online,
        "offline": total - online,
        "devicesOnline": online,  # the names dashboard KPI tiles use (templates-format.md)
        "devicesOffline": total - online,
        "messagesToday": messages_today(caller),
        "openAlerts": open_alerts(caller),
        "perTemplate": per_template,
    }


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def messages_today(caller: Caller) -> int | None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        d = dialect_of(caller.telemetry)
        sql, args = d.finish(
            f"SELECT count(*) FROM messages WHERE app_id = {d.param(1)} AND ts >= {d.param(2)}",
            [caller.app_id, d.timestamp(midnight)],
        )
        _, rows = caller.telemetry.query(sql, args)
    except Exception:  # a store that cannot run SQL here: the tile says "n/a"
        return None
    return int(rows[0][0])


def open_alerts(caller: Caller) -> int:
    a = schema.alerts.c
    stmt = sa.select(sa.func.count()).where(a.app_id == caller.app_id, a.state != "resolved")
    with caller.ctx.store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def inbox(caller: Caller, limit: int) -> Json:
    """The rules engine's alerts, unresolved first, newest first; connectivity events beside
    them (the inbox's second tab)."""
    a = schema.alerts.c
    stmt = (
        sa.select(a.id, a.rule_id, a.device_id, a.severity, a.state, a.opened_at, a.detail)
        .where(a.app_id == caller.app_id)
        .order_by((a.state == "resolved").asc(), a.opened_at.desc())
        .limit(limit)
    )
    e = schema.device_events.c
    events = (
        sa.select(e.device_id, e.kind, e.detail, e.at)
        .where(e.app_id == caller.app_id, e.kind.in_(["connected", "disconnected"]))
        .order_by(e.seq.desc())
        .limit(limit)
    )
    with caller.ctx.store.engine.connect() as conn:
        alerts = [dict(r._mapping) for r in conn.execute(stmt)]
        rows = [dict(r._mapping) for r in conn.execute(events)]
    return {"alerts": alerts, "events": rows}


def telemetry_names(model: ResolvedModel | None) -> list[str]:
    """Numeric telemetry of a template as explorer metrics (``component.name``)."""
    if model is None:
        return []
    found = []
    for component, view in [(None, model.root), *model.components.items()]:
        for content in view.contents:
            if isinstance(content, Telemetry) and getattr(content.schema, "name", "") in _NUMERIC:
                found.append(f"{component}.{content.name}" if component else content.name)
    return found


def metric_names(caller: Caller) -> list[str]:
    """Every numeric field the app's devices sent in the last 30 days (explorer's picker)."""
    since = datetime.now(UTC) - timedelta(days=30)
    try:
        d = dialect_of(caller.telemetry)
        sql = (
            "SELECT metric FROM (SELECT DISTINCT coalesce(component || '.', '') || name "
            f"AS metric FROM telemetry_1m WHERE app_id = {d.param(1)} AND module_id IS NULL "
            f"AND minute >= {d.param(2)}) AS names "
            f"ORDER BY {d.order('metric', text=True)} LIMIT 500"
        )
        sql, args = d.finish(sql, [caller.app_id, d.timestamp(since)])
        _, rows = caller.telemetry.query(sql, args)
    except Exception:
        return []
    return [r[0] for r in rows]


def render_tiles(caller: Caller, dashboard: Json) -> list[Tile]:
    figures: Json | None = None
    tiles = []
    for raw in dashboard.get("tiles", []):
        spec = {**raw.get("configuration", {}), **raw} if "configuration" in raw else raw
        kind = str(spec.get("type") or spec.get("configuration", {}).get("type") or "unknown")
        title = str(spec.get("title") or spec.get("displayName") or kind)
        tile = Tile(kind, title, spec)
        if kind == "kpi" and isinstance(spec.get("metric"), str):
            template = dashboard.get("template")
            figures = figures or fleet_figures(
                caller, template if isinstance(template, str) else None
            )
            tile.data = figures.get(str(spec["metric"]))
        elif kind in ("lkv", "table", "map"):
            tile.rows = _device_rows(caller, dashboard.get("template"), spec)
            if kind == "map" and spec.get("highlight") == "outside-anchor":
                _mark_outside(caller, dashboard.get("template"), spec, tile.rows)
        elif kind == "alerts":
            tile.rows = inbox(caller, 10)["alerts"]
        tiles.append(tile)
    return tiles


def _device_rows(caller: Caller, template: Any, spec: Json) -> list[Json]:
    store = caller.ctx.store
    d = schema.devices.c
    where = d.template == template if isinstance(template, str) else None
    rows = []
    for device in store.list_devices(caller.app_id, 0, 200, where):
        twin = store.get_twin(caller.app_id, device.id)
        cloud = store.cloud.get(caller.app_id, device.id).values
        row: Json = {"$id": device.id, "$displayName": device.display_name}
        for name in _names(spec):
            row[name] = _latest(caller, device.id, name, twin.reported, cloud)
        rows.append(row)
    return rows


DEFAULT_ANCHOR_RADIUS_M = 200.0


def _mark_outside(caller: Caller, template: Any, spec: Json, rows: list[Json]) -> None:
    """``map.highlight: "outside-anchor"``: each row with a location and an anchor gets
    ``$anchorDistance`` (metres) and ``$outside`` (farther than the template's geofence
    rule on that anchor allows, else 200 m); ``spec["$radius"]`` is the radius used."""
    anchor = spec.get("anchor")
    prop = anchor.get("property") if isinstance(anchor, dict) else None
    location = spec.get("location")
    if not isinstance(prop, str) or not isinstance(location, str):
        return
    radius = _fence_radius(caller, template, prop)
    spec["$radius"] = radius
    for row in rows:
        here, home = _point(row.get(location)), _point(row.get(prop))
        if here is None or home is None:
            continue
        distance = _haversine_m(here, home)
        row["$anchorDistance"] = round(distance)
        row["$outside"] = distance > radius


def _fence_radius(caller: Caller, template: Any, prop: str) -> float:
    """The radius of an enabled geofence rule of ``template`` centred on ``prop``."""
    r = schema.rules.c
    stmt = sa.select(r.document).where(r.app_id == caller.app_id, r.enabled.is_(True))
    with caller.ctx.store.engine.connect() as conn:
        documents = [row[0] for row in conn.execute(stmt)]
    for doc in documents:
        if not isinstance(doc, dict) or (doc.get("target") or {}).get("template") != template:
            continue
        for item in (doc.get("conditions") or {}).get("items") or []:
            if not isinstance(item, dict) or item.get("type") != "geofence":
                continue
            center, radius = item.get("center"), item.get("radiusMeters")
            if isinstance(center, dict) and center.get("property") == prop:
                return _number(radius) or DEFAULT_ANCHOR_RADIUS_M
    return DEFAULT_ANCHOR_RADIUS_M


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _point(value: Any) -> tuple[float, float] | None:
    if isinstance(value, dict):
        lat, lon = _number(value.get("lat")), _number(value.get("lon"))
        if lat is not None and lon is not None:
            return lat, lon
    return None


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, h)))


def _names(spec: Json) -> list[str]:
    names = list(spec.get("telemetry", [])) + list(spec.get("columns", []))
    for key in ("location",):
        if isinstance(spec.get(key), str):
            names.append(spec[key])
    anchor = spec.get("anchor")
    if isinstance(anchor, dict) and isinstance(anchor.get("property"), str):
        names.append(anchor["property"])
    return [n for n in names if isinstance(n, str) and not n.startswith("$")]


def _latest(caller: Caller, device_id: str, name: str, reported: Json, cloud: Json) -> Any:
    component, _, field_name = name.rpartition(".")
    found = caller.telemetry.latest(caller.app_id, device_id, field_name, component or None)
    if found is not None:
        return found[0]
    value = reported.get(name, cloud.get(name))
    if isinstance(value, dict) and "value" in value and "ac" in value:
        value = value["value"]
    return value
