"""``POST /api/query`` over HTTP, on the real telemetry stores (DuckDB and PostgreSQL, each
test on both) fed through their batch write."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.hub.catalog import build_catalog
from aislehub.hub.hub import DeviceHub
from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.metadata import Device, MetadataStore, Twin
from tests.api.conftest import Api, Telemetry
from tests.api.stores import BACKENDS, open_env
from tests.query.boiler import BOILER, OTHER, boiler_template

pytestmark = pytest.mark.anyio
PREVIEW = "2022-10-31-preview"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class QueryEnv:
    store: MetadataStore
    hub: DeviceHub
    telemetry: Telemetry
    api: Api
    api_b: Api
    offset: int = 0

    def device(self, app_id: str, device_id: str, simulated: bool = False) -> None:
        device = Device(app_id, device_id, device_id, BOILER, provisioned=True, simulated=simulated)
        self.store.put_device(device)

    def sync(self) -> None:
        self.telemetry.sync_catalog(build_catalog(self.store, self.hub.templates))

    def send(self, app_id: str, device_id: str, ago: timedelta, fields: dict[str, Any]) -> None:
        self.offset += 1
        ms = int((NOW - ago).timestamp() * 1000)
        record = TelemetryRecord(app_id, device_id, None, ms, {}, orjson.dumps(fields))
        self.telemetry.write_batch("q", decode_batch([(self.offset, record)]), self.offset)

    async def query(self, text: str, api: Api | None = None, **kw: Any) -> httpx.Response:
        kw.setdefault("version", PREVIEW)
        return await (api or self.api).post("/query", json={"query": text}, **kw)


@pytest.fixture(params=BACKENDS)
async def qenv(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[QueryEnv]:
    async with open_env(request.param, tmp_path, migrated_db, app_for) as base:
        env = QueryEnv(base.store, base.hub, base.telemetry, base.api, base.api_b)
        for app_id in ("app-a", "app-b"):
            base.hub.templates.publish(app_id, BOILER, boiler_template())
        env.device("app-a", "b1")
        env.device("app-a", "b2", simulated=True)
        env.device("app-b", "b1")
        env.sync()
        env.send("app-a", "b1", timedelta(minutes=30), {"temperature": 20.5, "status": "ok"})
        env.send("app-a", "b1", timedelta(minutes=10), {"temperature": 22.5})
        env.send("app-a", "b2", timedelta(minutes=20), {"temperature": 30.0, "status": "hot"})
        env.send("app-b", "b1", timedelta(minutes=5), {"temperature": -7.0})
        yield env


def _iso(ago: timedelta) -> str:
    return (NOW - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert response.headers["x-ms-error-code"] == body["error"]["code"]
    assert body["error"]["requestId"] and body["error"]["time"]
    error: dict[str, Any] = body["error"]
    return error


async def test_raw_rows_are_flat_objects_with_iso_timestamps(qenv: QueryEnv) -> None:
    response = await qenv.query(f"SELECT temperature, status FROM {BOILER} WHERE $id = 'b1'")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [
            {"$id": "b1", "$ts": _iso(timedelta(minutes=10)), "temperature": 22.5}
            | {"status": None},
            {"$id": "b1", "$ts": _iso(timedelta(minutes=30)), "temperature": 20.5}
            | {"status": "ok"},
        ]
    }


@pytest.mark.parametrize("version", ["2022-07-31", "1.0", PREVIEW, "1.2-preview"])
async def test_every_api_version_serves_it(qenv: QueryEnv, version: str) -> None:
    response = await qenv.query(f"SELECT TOP 1 temperature FROM {BOILER}", version=version)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1


async def test_aggregates_and_aliases(qenv: QueryEnv) -> None:
    response = await qenv.query(
        f"SELECT $id, LAST(temperature) AS latest, COUNT(temperature) FROM {BOILER} "
        "WHERE WITHIN_WINDOW(P1D) ORDER BY latest DESC"
    )
    assert response.json()["results"] == [
        {"$id": "b2", "latest": 30.0, "count_temperature": 1},
        {"$id": "b1", "latest": 22.5, "count_temperature": 2},
    ]
    response = await qenv.query(
        f"SELECT AVG(temperature) FROM {BOILER} WHERE $simulated = false GROUP BY WINDOW(P1D)"
    )
    [row] = response.json()["results"]
    assert row["avg_temperature"] == 21.5
    assert row["$ts"].endswith("T00:00:00.000Z")


async def test_apps_never_see_each_others_rows(qenv: QueryEnv) -> None:
    text = f"SELECT temperature FROM {BOILER}"
    a = (await qenv.query(text)).json()["results"]
    b = (await qenv.query(text, api=qenv.api_b)).json()["results"]
    assert sorted(r["temperature"] for r in a) == [20.5, 22.5, 30.0]
    assert b == [{"$id": "b1", "$ts": _iso(timedelta(minutes=5)), "temperature": -7.0}]
    agg = await qenv.query(f"SELECT MIN(temperature) FROM {BOILER}", api=qenv.api_b)
    assert agg.json()["results"] == [{"min_temperature": -7.0}]


async def test_property_queries(qenv: QueryEnv) -> None:
    twin = Twin(reported={"serialNumber": "SN-1", "setpoint": {"value": 21.0, "ac": 200}})
    qenv.store.save_twin("app-a", "b1", "", twin)
    qenv.store.save_twin("app-a", "b2", "", Twin(reported={"serialNumber": "SN-2"}))
    cloud = qenv.store.cloud.get("app-a", "b2")
    cloud.values["site"] = "Lyon"
    qenv.store.cloud.save("app-a", "b2", cloud)
    response = await qenv.query(f"SELECT $id, serialNumber, setpoint, site FROM {BOILER}")
    assert response.json()["results"] == [
        {"$id": "b1", "serialNumber": "SN-1", "setpoint": 21.0, "site": None},
        {"$id": "b2", "serialNumber": "SN-2", "setpoint": None, "site": "Lyon"},
    ]
    response = await qenv.query(
        f"SELECT $id, site AS s FROM {BOILER} WHERE s = 'Lyon' OR setpoint > 20 ORDER BY $id DESC"
    )
    assert response.json()["results"] == [{"$id": "b2", "s": "Lyon"}, {"$id": "b1", "s": None}]
    other = await qenv.query(f"SELECT serialNumber FROM {BOILER}", api=qenv.api_b)
    assert other.json()["results"] == [{"serialNumber": None}]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"query": "SELECT temperature FROM"}, "Invalid query at position 24"),
        ({"query": f"SELECT * FROM {BOILER}"}, "SELECT * is not supported"),
        ({"query": f"SELECT a FROM {BOILER} WHERE $id = '{'x' * 340}'"}, "350 characters"),
        ({"query": 5}, "query"),
        ({}, "query"),
    ],
)
async def test_bad_queries_are_400(qenv: QueryEnv, body: Any, words: str) -> None:
    response = await qenv.api.post("/query", json=body, version=PREVIEW)
    error = _error(response, 400)
    assert error["code"] == "BadRequest" and words in error["message"], error


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"SELECT temperature FROM {OTHER}", f"no device template {OTHER}"),
        (f"SELECT humidity FROM {BOILER}", "no telemetry or property 'humidity'"),
        (f"SELECT temperature, serialNumber FROM {BOILER}", "either telemetry or properties"),
        (f"SELECT AVG(status) FROM {BOILER}", "AVG needs a numeric"),
    ],
)
async def test_queries_that_do_not_fit_the_template_are_422(
    qenv: QueryEnv, text: str, words: str
) -> None:
    error = _error(await qenv.query(text), 422)
    assert error["code"] == "ValidationFailed" and words in error["message"], error


async def test_authentication_and_api_version_still_apply(qenv: QueryEnv) -> None:
    text = f"SELECT temperature FROM {BOILER}"
    assert _error(await qenv.query(text, token=None), 401)["code"] == "Unauthorized"
    assert _error(await qenv.query(text, version=None), 400)["code"] == "InvalidApiVersion"
