"""The in-process API of ``tests/api/conftest.py`` on either telemetry store: the embedded
DuckDB one or PostgreSQL (a database of its own), for the tests that run on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.store.postgres_telemetry import PostgresTelemetryStore
from tests.api.conftest import Env, OneMessageWrites, Telemetry, open_env_over
from tests.services import postgres_database

BACKENDS = ["duckdb", "postgres"]


class PostgresTelemetry(OneMessageWrites, PostgresTelemetryStore):
    """The PostgreSQL store with the DuckDB test store's ``add`` (one message per call)."""


@asynccontextmanager
async def open_env(
    backend: str, tmp_path: Path, migrated_db: Path, app_for: Callable[[ApiContext], FastAPI]
) -> AsyncIterator[Env]:
    """What the ``env`` fixture gives, with ``backend``'s telemetry store."""
    if backend == "duckdb":
        async with open_env_over(Telemetry(), tmp_path, migrated_db, app_for) as env:
            yield env
        return
    with postgres_database() as url:
        telemetry = cast(Telemetry, PostgresTelemetry(url))
        async with open_env_over(telemetry, tmp_path, migrated_db, app_for) as env:
            yield env
