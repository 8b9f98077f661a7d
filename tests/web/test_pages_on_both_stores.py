"""The operator UI's own SQL (overview figures, the explorer's metric picker, live
telemetry, the explorer endpoints) on both telemetry stores: DuckDB and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.query.dialect import dialect_of
from aislehub.store.metadata import Device
from aislehub.web.pages import _live_sql
from tests.api.conftest import Env
from tests.api.stores import BACKENDS, open_env
from tests.web.test_pages import sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[Env]:
    async with open_env(request.param, tmp_path, migrated_db, app_for) as opened:
        yield opened


async def test_overview_counts_todays_messages(env: Env) -> None:
    env.store.put_device(Device("app-a", "d1", "d1"))
    now = datetime.now(UTC)
    env.telemetry.add("app-a", "d1", "temp", now, 1.0)
    env.telemetry.add("app-a", "d1", "temp", now, 2.0)
    env.telemetry.add("app-b", "x", "temp", now, 3.0)
    if now.hour:  # yesterday's message is not today's (unless today began a moment ago)
        env.telemetry.add("app-a", "d1", "temp", now - timedelta(days=1), 3.0)
    await sign_in(env)
    home = await env.client.get("/")
    assert 'data-kpi="messagesToday"><span class="value">2<' in home.text


async def test_explorer_lists_the_apps_metrics_by_name(env: Env) -> None:
    now = datetime.now(UTC)
    for name in ("temp", "Rh", "door", "z"):
        env.telemetry.add("app-a", "d1", name, now, 1.0)
    env.telemetry.add("app-a", "d1", "temp", now, 1.0, component="probe")
    env.telemetry.add("app-a", "d1", "status", now, "ok")  # not a number
    env.telemetry.add("app-b", "x", "secret", now, 1.0)
    await sign_in(env)
    page = await env.client.get("/explorer")
    (datalist,) = re.findall(r'<datalist id="metrics">(.*?)</datalist>', page.text)
    options = re.findall(r'<option value="([^"]+)">', datalist)
    assert options == ["Rh", "door", "probe.temp", "temp", "z"]


async def test_explorer_endpoints(env: Env) -> None:
    env.store.put_device(Device("app-a", "d1", "d1"))
    env.store.put_device(Device("app-a", "d2", "d2"))
    now = datetime.now(UTC)
    env.telemetry.add("app-a", "d1", "temp", now, 4.0)
    env.telemetry.add("app-a", "d2", "temp", now, 6.0)
    env.telemetry.add("app-b", "x", "temp", now, 99.0)
    csrf = await sign_in(env)
    body = {"metric": "temp", "aggregation": "max", "range": "PT1H", "splitBy": "device"}
    response = await env.client.post("/explorer/query", json=body, headers={"X-CSRF-Token": csrf})
    assert [(s["name"], s["total"]) for s in response.json()["series"]] == [
        ("d2", 6.0),
        ("d1", 4.0),
    ]
    raw = {**body, "mode": "raw"}
    response = await env.client.post("/explorer/query", json=raw, headers={"X-CSRF-Token": csrf})
    assert sorted(v for column in response.json()["values"] for v in column if v) == [4.0, 6.0]
    form = {"query": '{"metric": "temp", "range": "PT1H", "aggregation": "sum"}', "csrf": csrf}
    csv = await env.client.post("/explorer/export?format=csv", data=form)
    assert csv.text.startswith("time,temp\n") and csv.text.rstrip().endswith(",10.0")


async def test_live_telemetry_statement(env: Env) -> None:
    now = datetime.now(UTC).replace(microsecond=123000)
    env.telemetry.add("app-a", "d1", "temp", now - timedelta(minutes=5), 1.0)
    env.telemetry.add("app-a", "d1", "temp", now, 2.0)
    env.telemetry.add("app-a", "d1", "temp", now, 3.0, component="probe")
    env.telemetry.add("app-a", "d2", "temp", now, 4.0)
    d = dialect_of(env.telemetry)
    since = now - timedelta(minutes=1)
    sql, args = d.finish(_live_sql(d), ["app-a", "d1", d.timestamp(since)])
    _, rows = env.telemetry.query(sql, args)
    ms = int(now.timestamp() * 1000)
    assert sorted(rows) == [("probe.temp", ms, 3.0), ("temp", ms, 2.0)]
