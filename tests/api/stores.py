"""The in-process API of ``tests/api/conftest.py`` on either telemetry store: the embedded
DuckDB one or PostgreSQL (a database of its own), for the tests that run on both."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.hub.hub import DeviceHub
from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.metrics import Metrics
from aislehub.store.metadata import App, MetadataStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore
from tests.api.conftest import BASE_URL, Api, Env, Telemetry, make_token
from tests.services import postgres_database

BACKENDS = ["duckdb", "postgres"]


class PostgresTelemetry(PostgresTelemetryStore):
    """The PostgreSQL store with the DuckDB test store's ``add`` (one message per call)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.offset = -1

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
        self.write_batch("api-tests", decode_batch([(self.offset, record)]), self.offset)


@asynccontextmanager
async def open_env(
    backend: str, tmp_path: Path, migrated_db: Path, app_for: Callable[[ApiContext], FastAPI]
) -> AsyncIterator[Env]:
    """What the ``env`` fixture gives, with ``backend``'s telemetry store."""
    if backend == "duckdb":
        async with _env(Telemetry(), tmp_path, migrated_db, app_for) as env:
            yield env
        return
    with postgres_database() as url:
        telemetry = cast(Telemetry, PostgresTelemetry(url))
        async with _env(telemetry, tmp_path, migrated_db, app_for) as env:
            yield env


@asynccontextmanager
async def _env(
    telemetry: Telemetry,
    tmp_path: Path,
    migrated_db: Path,
    app_for: Callable[[ApiContext], FastAPI],
) -> AsyncIterator[Env]:
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
