"""``POST /api/explorer/query`` and ``/api/explorer/export`` over HTTP (ASGI), on both
telemetry stores (DuckDB and PostgreSQL): the same answers from each."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.store.metadata import Device
from tests.api.conftest import Env
from tests.api.stores import BACKENDS, open_env

pytestmark = pytest.mark.anyio
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
BODY = {"metric": "temp", "aggregation": "max", "range": "PT1H", "grain": "PT10M",
        "splitBy": "device", "limit": 2}  # fmt: skip


@pytest.fixture(params=BACKENDS)
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[Env]:
    async with open_env(request.param, tmp_path, migrated_db, app_for) as opened:
        yield opened


def fill(env: Env) -> None:
    for n in range(1, 4):
        env.store.put_device(Device("app-a", f"d{n}", f"d{n}"))
        env.telemetry.add("app-a", f"d{n}", "temp", T0, float(n))
    env.store.put_device(Device("app-b", "secret", "secret"))
    env.telemetry.add("app-b", "secret", "temp", T0, 1000.0)


async def test_query_is_columnar_json(env: Env) -> None:
    fill(env)
    response = await env.api.post("/explorer/query", json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["name"] for s in body["series"]] == ["d3", "d2", "other"]
    assert body["source"] == "rollup"
    assert len(body["time"]) == 1 and body["values"] == [[3.0], [2.0], [1.0]]
    assert body["warning"] is None and body["query"]["splitBy"] == "device"


async def test_query_as_arrow(env: Env) -> None:
    fill(env)
    accept = {"Accept": "application/vnd.apache.arrow.stream"}
    response = await env.api.post("/explorer/query", json=BODY, headers=accept)
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = ipc.open_stream(io.BytesIO(response.content)).read_all()
    assert table.column_names == ["time", "d3", "d2", "other"]


async def test_exports(env: Env) -> None:
    fill(env)
    csv = await env.api.post("/explorer/export", json=BODY, params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "time,d3,d2,other"
    parquet = await env.api.post("/explorer/export", json=BODY, params={"format": "parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("d3").to_pylist() == [3.0]


async def test_apps_see_only_their_own_devices(env: Env) -> None:
    fill(env)
    theirs = await env.api_b.post("/explorer/query", json=BODY)
    assert [s["name"] for s in theirs.json()["series"]] == ["secret"]
    # Naming another app's device in the scope reads nothing.
    ours = await env.api.post("/explorer/query", json={**BODY, "scope": {"devices": ["secret"]}})
    assert ours.json()["series"] == []


async def test_bad_query_is_a_400_in_the_error_shape(env: Env) -> None:
    response = await env.api.post("/explorer/query", json={"metric": "t", "limit": 0})
    assert response.status_code == 400
    assert "limit" in response.json()["error"]["message"]
    unauthenticated = await env.api.post("/explorer/query", json=BODY, token=None)
    assert unauthenticated.status_code == 401
