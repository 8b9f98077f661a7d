"""An in-process API over a real metadata store and device hub, with two apps (tenants)."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from aislehub.api import ApiContext, create_api, issue_api_token
from aislehub.hub.hub import DeviceHub
from aislehub.hub.links import Key, OnAck
from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.metrics import Metrics
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import App, MetadataStore

API_VERSION = "2022-07-31"
ADMIN_ROLE = "ca310b8d-2f4a-44e0-a36e-957c202cd8d4"
BASE_URL = "https://contoso.example.net"


class FakeLink:
    """A device connection that records what the hub publishes and answers methods."""

    def __init__(self, hub: DeviceHub, key: Key, answer: bool = True) -> None:
        self.hub, self.key, self.answer = hub, key, answer
        self.published: list[tuple[str, bytes]] = []
        self.closed: str | None = None
        self.active_at = time.time()

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        on_ack: OnAck | None = None,
    ) -> None:
        self.published.append((topic, payload))
        if self.answer and topic.startswith("$iothub/methods/POST/"):
            rid = topic.partition("?$rid=")[2]
            self.hub.methods.on_response(self.key, rid, 200, b'{"ok":true}')

    def close(self, reason: str) -> None:
        self.closed = reason

    def last_activity(self) -> float:
        return self.active_at


class OneMessageWrites:
    """``add``: feed a telemetry store one field at a time, each call one message through
    the store's own batch write (mixed into the test stores of both engines)."""

    offset = -1

    def add(
        self,
        app_id: str,
        device_id: str,
        name: str,
        ts: datetime,
        value: Any,
        component: str | None = None,
        module_id: str | None = None,
    ) -> None:
        self.offset += 1
        props = {"$.sub": component} if component else {}
        ms = int(ts.timestamp() * 1000)
        record = TelemetryRecord(
            app_id, device_id, module_id, ms, props, orjson.dumps({name: value})
        )
        self.write_batch(  # type: ignore[attr-defined]
            "api-tests", decode_batch([(self.offset, record)]), self.offset
        )


class Telemetry(OneMessageWrites, DuckDBTelemetryStore):
    """The real telemetry store, in memory."""

    def __init__(self) -> None:
        super().__init__(":memory:", threads=1)


class Api:
    """Calls ``/api`` with a token and ``api-version`` unless told otherwise."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "",
        version: str | None = API_VERSION,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        query = {**({"api-version": version} if version else {}), **(params or {})}
        auth = self.token if token == "" else token
        headers = {**({"Authorization": auth} if auth else {}), **kwargs.pop("headers", {})}
        return await self.client.request(
            method, f"/api{path}", params=query, headers=headers, **kwargs
        )

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)


@dataclass
class Env:
    store: MetadataStore
    hub: DeviceHub
    metrics: Metrics
    telemetry: Telemetry
    client: httpx.AsyncClient
    api: Api  # as app A's admin
    api_b: Api  # as app B's admin

    def attach(self, device_id: str, module_id: str = "", answer: bool = True) -> FakeLink:
        key = ("app-a", device_id, module_id)
        link = FakeLink(self.hub, key, answer)
        self.hub.links.attach(key, link)
        return link


def make_token(
    store: MetadataStore,
    app_id: str,
    token_id: str = "admin",
    expiry: timedelta = timedelta(days=1),
) -> str:
    return issue_api_token(
        store, app_id, token_id, [{"role": ADMIN_ROLE}], datetime.now(UTC) + expiry
    )


@pytest.fixture(scope="session")
def app_for() -> Callable[[ApiContext], FastAPI]:
    """One FastAPI app for the session (building the routes is the slow part), fresh state."""
    apps: list[FastAPI] = []

    def bind(ctx: ApiContext) -> FastAPI:
        if not apps:
            apps.append(create_api(ctx))
        apps[0].state.ctx = ctx
        return apps[0]

    return bind


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated metadata database; each test starts from a copy (saves migrating)."""
    path = tmp_path_factory.mktemp("template") / "m.sqlite"
    MetadataStore(f"sqlite:///{path}").close()
    return path


@asynccontextmanager
async def open_env_over(
    telemetry: Telemetry,
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[Env]:
    """Two apps over a copy of the migrated metadata database and ``telemetry`` (closed
    after)."""
    shutil.copyfile(migrated_db, tmp_path / "m.sqlite")
    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    store.create_app(App("app-a", "Contoso", "contoso", "0ne000000A1"))
    store.create_app(App("app-b", "Fabrikam", "fabrikam", "0ne000000B2"))
    metrics = Metrics()
    hub = DeviceHub(store, metrics, "localhost")
    ctx = ApiContext(store=store, hub=hub, telemetry=telemetry, metrics=metrics)
    transport = httpx.ASGITransport(app_for(ctx), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Env(
                store,
                hub,
                metrics,
                telemetry,
                client,
                Api(client, make_token(store, "app-a")),
                Api(client, make_token(store, "app-b")),
            )
    finally:
        telemetry.close()
        store.close()


@pytest.fixture
async def env(
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[Env]:
    async with open_env_over(Telemetry(), tmp_path, migrated_db, app_for) as opened:
        yield opened


@pytest.fixture
def api(env: Env) -> Api:
    return env.api
