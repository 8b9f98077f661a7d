"""A real metadata store and telemetry store, fed through the ingest write: every test
runs on the embedded DuckDB store and on the PostgreSQL store (a database of its own)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.services import postgres_database

from aislehub.explorer import ExplorerResult, parse_explorer_query, run_explorer_query
from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import App, Device, MetadataStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
APP = "app-a"


@dataclass
class Fleet:
    store: MetadataStore
    telemetry: DuckDBTelemetryStore | PostgresTelemetryStore
    offset: int = -1

    def device(self, device_id: str, app_id: str = APP, template: str | None = None) -> None:
        self.store.put_device(Device(app_id, device_id, device_id, template, True, False, False))

    def send(
        self, points: Sequence[tuple[str, datetime, dict[str, Any]]], app_id: str = APP
    ) -> None:
        """One batch: (device, time, payload) per message."""
        records = []
        for device_id, ts, body in points:
            self.offset += 1
            ms = int(ts.timestamp() * 1000)
            record = TelemetryRecord(app_id, device_id, None, ms, {}, orjson.dumps(body))
            records.append((self.offset, record))
        self.telemetry.write_batch("tests", decode_batch(records), self.offset)

    def query(self, app_id: str = APP, **body: Any) -> ExplorerResult:
        body.setdefault("from", T0.isoformat())
        body.setdefault("to", (T0 + timedelta(hours=1)).isoformat())
        parsed = parse_explorer_query(body, now=T0 + timedelta(hours=1))
        return run_explorer_query(parsed, app_id, self.store, self.telemetry)


@contextmanager
def open_fleet(tmp_path: Path, backend: str) -> Iterator[Fleet]:
    """Two apps' metadata (SQLite) beside an empty telemetry store of ``backend``."""
    store = MetadataStore(f"sqlite:///{tmp_path}/m-{backend}.sqlite")
    store.create_app(App(APP, "Contoso", "contoso", "0ne000000A1"))
    store.create_app(App("app-b", "Fabrikam", "fabrikam", "0ne000000B2"))
    try:
        if backend == "duckdb":
            telemetry: DuckDBTelemetryStore | PostgresTelemetryStore = DuckDBTelemetryStore(
                ":memory:", threads=1
            )
            with contextlib.closing(telemetry):
                yield Fleet(store, telemetry)
        else:
            with postgres_database() as url:
                telemetry = PostgresTelemetryStore(url)
                with contextlib.closing(telemetry):
                    yield Fleet(store, telemetry)
    finally:
        store.close()


@pytest.fixture(params=["duckdb", "postgres"])
def fleet(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    with open_fleet(tmp_path, request.param) as opened:
        yield opened


def columns(result: ExplorerResult) -> dict[str, list[float | None]]:
    return {s.name: v for s, v in zip(result.series, result.values, strict=True)}
