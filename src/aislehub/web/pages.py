"""The operator UI's pages: thin handlers that read the domain and render a template.

Every page needs a signed-in session (else a redirect to ``/login``); every POST needs
the session's CSRF token. A signed-in user acts in their app with the same code paths as
an API token of that app (:class:`~aislehub.api.deps.Caller`), so the UI can never do
more, or anything else, than the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from aislehub.api.deps import Caller, check_device_id, context
from aislehub.api.models import CommandBody
from aislehub.api.routes import alerts as alert_routes
from aislehub.api.routes import commands as command_routes
from aislehub.api.routes import properties as property_routes
from aislehub.api.routes.explorer import explore, export_response
from aislehub.errors import ApiError, NotFound
from aislehub.query.device_filter import parse_device_filter
from aislehub.query.dialect import Dialect, dialect_of
from aislehub.store import schema
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.metadata import ApiToken
from aislehub.store.users import DashboardStore, UserStore
from aislehub.web import overview
from aislehub.web.forms import command_forms, request_from_form
from aislehub.web.session import CSRF_HEADER, Session, SessionCodec, csrf_ok, new_session
from aislehub.web.templating import render

__all__ = ["LoginRequired", "router"]

Json = dict[str, Any]
ADMIN_ROLE = "ca310b8d-2f4a-44e0-a36e-957c202cd8d4"  # IoT Central's App Administrator
PAGE_SIZE = 25
LIVE_WINDOW = timedelta(minutes=10)
LIVE_INTERVAL = 1.0  # seconds between store polls of a live chart

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """No signed-in session: the handler answers with a redirect to the login page."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


def codec(request: Request) -> SessionCodec:
    found: SessionCodec = request.app.state.web_sessions
    return found


def signed_in(request: Request) -> Session:
    session = codec(request).read(request)
    if session is None or not session.signed_in:
        raise LoginRequired
    return session


async def checked_post(request: Request) -> Session:
    """The session of a state-changing request that carries its CSRF token."""
    session = signed_in(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("csrf") or "") or None
    if not csrf_ok(session, sent):
        raise CsrfFailed
    return session


SessionDep = Annotated[Session, Depends(signed_in)]
PostDep = Annotated[Session, Depends(checked_post)]


def caller_for(request: Request, session: Session) -> Caller:
    """The session's user as a caller of the API's handlers, in the user's app only."""
    expiry = datetime.now(UTC) + timedelta(minutes=5)
    token = ApiToken(session.app_id or "", f"user:{session.user}", [{"role": ADMIN_ROLE}], expiry)
    return Caller(context(request), token)


# -- login -------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, error: str | None = None) -> Response:
    session = codec(request).read(request) or new_session()
    response = render(request, "login.html", session, error=error)
    codec(request).write(request, response, session)
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    session = codec(request).read(request)
    if not csrf_ok(session, csrf):
        return RedirectResponse("/login?error=expired", status_code=303)
    users = UserStore(context(request).store.engine)
    user = await asyncio.to_thread(users.authenticate, username, password)
    if user is None:
        return RedirectResponse("/login?error=invalid", status_code=303)
    response = RedirectResponse("/", status_code=303)
    codec(request).write(request, response, new_session(user.name, user.app_id))
    return response


@router.post("/logout")
async def logout(request: Request, session: PostDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    codec(request).clear(response)
    return response


# -- fleet overview ------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep) -> Response:
    caller = caller_for(request, session)
    figures = await asyncio.to_thread(overview.fleet_figures, caller)
    dashboards = DashboardStore(caller.ctx.store.engine).in_app(caller.app_id)
    return render(request, "overview.html", session, figures=figures, dashboards=dashboards)


# -- devices -------------------------------------------------------------------------------


@router.get("/devices", response_class=HTMLResponse)
async def device_list(
    request: Request,
    session: SessionDep,
    q: str = "",
    template: str = "",
    status: str = "",
    group: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    caller = caller_for(request, session)
    where = _device_filter(caller, q, template, status, group)
    store = caller.ctx.store
    rows = store.list_devices(caller.app_id, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1, where)
    online = caller.ctx.hub.links.connected_devices(caller.app_id)
    filters = {"q": q, "template": template, "status": status, "group": group}
    return render(
        request,
        "devices_table.html" if request.headers.get("HX-Request") else "devices.html",
        session,
        devices=rows[:PAGE_SIZE],
        online=online,
        page=page,
        more=len(rows) > PAGE_SIZE,
        filters=filters,
        query="&".join(f"{k}={quote(v)}" for k, v in filters.items() if v),
        templates=store.templates.page(caller.app_id, 0, 200),
        groups=store.groups.page(caller.app_id, 0, 200),
    )


def _device_filter(
    caller: Caller, q: str, template: str, status: str, group: str
) -> sa.ColumnElement[bool] | None:
    d = schema.devices.c
    clauses: list[sa.ColumnElement[bool]] = []
    if q:
        clauses.append(
            d.id.contains(q, autoescape=True) | d.display_name.contains(q, autoescape=True)
        )
    if template:
        clauses.append(d.template == template)
    online = sorted(caller.ctx.hub.links.connected_devices(caller.app_id))
    if status == "online":
        clauses.append(d.id.in_(online))
    elif status == "offline":
        clauses.append(d.id.not_in(online))
    elif status == "blocked":
        clauses.append(d.enabled.is_(False))
    if group:
        found = caller.ctx.store.groups.get(caller.app_id, group)
        if found is None:
            raise NotFound(f"Device group {group!r} was not found.")
        clauses.append(filter_clause(parse_device_filter(found.filter)))
    return sa.and_(*clauses) if clauses else None


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device_page(request: Request, device_id: str, session: SessionDep) -> Response:
    check_device_id(device_id)
    caller = caller_for(request, session)
    device = caller.device(device_id)
    template = caller.template_of(device)
    twin = caller.ctx.hub.twin(caller.key(device_id))
    properties = await property_routes.get_device_properties(device_id, caller)
    status = await property_routes.get_property_status(device_id, caller)
    telemetry = overview.telemetry_names(template.model if template else None)
    return render(
        request,
        "device.html",
        session,
        device=device,
        template=template,
        online=caller.ctx.hub.links.is_connected(caller.key(device_id)),
        properties=properties,
        acks=status["value"],
        twin=orjson.dumps(
            {"desired": twin.desired, "reported": twin.reported}, option=orjson.OPT_INDENT_2
        ).decode(),
        telemetry=telemetry,
        forms=command_forms(template.model if template else None),
    )


@router.post("/devices/{device_id}/commands/{path}", response_class=HTMLResponse)
async def run_command(request: Request, device_id: str, path: str, session: PostDep) -> Response:
    check_device_id(device_id)
    caller = caller_for(request, session)
    template = caller.template_of(caller.device(device_id))
    forms = {f.path: f for f in command_forms(template.model if template else None)}
    form = forms.get(path)
    if form is None:
        raise NotFound(f"Command {path!r} is not in the device's template.")
    posted = {k: str(v) for k, v in (await request.form()).items()}
    body = CommandBody.model_validate(
        {"request": request_from_form(form, posted), "responseTimeout": 30}
    )
    try:
        run = await command_routes._run(caller, device_id, None, form.component, form.name, body)
    except ApiError as exc:
        return render(request, "command_result.html", session, error=exc.message, form=form)
    if form.inputs == []:
        run.pop("request", None)
    return render(request, "command_result.html", session, run=run, form=form)


@router.get("/devices/{device_id}/live")
async def live(request: Request, device_id: str, session: SessionDep) -> Response:
    """Server-sent events: the device's numeric telemetry as the store receives it."""
    check_device_id(device_id)
    caller = caller_for(request, session)
    caller.device(device_id)
    return StreamingResponse(
        _live_events(request, caller, device_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _live_sql(d: Dialect) -> str:
    """The device's numeric fields since a time, in the telemetry store's SQL."""
    return (
        f"SELECT coalesce(component || '.', '') || name, {d.epoch_ms('ts')}, value "
        f"FROM telemetry_num WHERE app_id = {d.param(1)} AND device_id = {d.param(2)} "
        f"AND module_id IS NULL AND ts > {d.param(3)} ORDER BY ts LIMIT 5000"
    )


async def _live_events(request: Request, caller: Caller, device_id: str) -> AsyncIterator[bytes]:
    since = datetime.now(UTC) - LIVE_WINDOW
    reader = caller.telemetry
    d = dialect_of(reader)
    yield b"retry: 2000\n\n"
    while not await request.is_disconnected():
        sql, args = d.finish(_live_sql(d), [caller.app_id, device_id, d.timestamp(since)])
        _, rows = await asyncio.to_thread(reader.query, sql, args)
        if rows:
            since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
                milliseconds=max(r[1] for r in rows)
            )
            points = [{"name": n, "t": t, "v": v} for n, t, v in rows]
            yield b"data: " + orjson.dumps(points) + b"\n\n"
        else:
            yield b": idle\n\n"
        await asyncio.sleep(LIVE_INTERVAL)


# -- dashboards, alerts, explorer ------------------------------------------------------------


@router.get("/dashboards/{dashboard_id}", response_class=HTMLResponse)
async def dashboard_page(request: Request, dashboard_id: str, session: SessionDep) -> Response:
    caller = caller_for(request, session)
    dashboard = DashboardStore(caller.ctx.store.engine).get(caller.app_id, dashboard_id)
    if dashboard is None:
        raise NotFound(f"Dashboard {dashboard_id!r} was not found.")
    tiles = await asyncio.to_thread(overview.render_tiles, caller, dashboard.document)
    return render(request, "dashboard.html", session, dashboard=dashboard, tiles=tiles)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, session: SessionDep) -> Response:
    caller = caller_for(request, session)
    inbox = await asyncio.to_thread(overview.inbox, caller, 100)
    return render(request, "alerts.html", session, inbox=inbox)


@router.post("/alerts/{alert_id}/{action}")
async def alert_action(request: Request, alert_id: str, action: str, session: PostDep) -> Response:
    """Acknowledge or resolve an alert through the alerts API's own handlers."""
    handler = {"acknowledge": alert_routes.acknowledge, "resolve": alert_routes.resolve}.get(action)
    if handler is None:
        raise NotFound(f"No alert action {action!r}.")
    await handler(alert_id, caller_for(request, session))
    return RedirectResponse("/alerts", status_code=303)


@router.get("/explorer", response_class=HTMLResponse)
async def explorer_page(request: Request, session: SessionDep) -> Response:
    caller = caller_for(request, session)
    metrics = await asyncio.to_thread(overview.metric_names, caller)
    return render(request, "explorer.html", session, metrics=metrics)


@router.post("/explorer/query")
async def explorer_query(request: Request, session: PostDep) -> Response:
    result = await explore(caller_for(request, session), await _json(request))
    return Response(orjson.dumps(result.to_json()), media_type="application/json")


@router.post("/explorer/export")
async def explorer_export(request: Request, session: PostDep, format: str = "csv") -> Response:
    body = await _json(request)
    result = await explore(caller_for(request, session), body, export=True)
    return export_response(result, "parquet" if format == "parquet" else "csv")


async def _json(request: Request) -> Any:
    form_type = request.headers.get("content-type", "")
    if form_type.startswith("application/x-www-form-urlencoded"):
        return orjson.loads(str((await request.form()).get("query") or "{}"))
    return orjson.loads(await request.body() or b"{}")
