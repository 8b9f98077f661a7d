"""A real metadata store and DuckDB telemetry store, fed through the ingest write."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from aislehub.explorer import ExplorerResult, parse_explorer_query, run_explorer_query
from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import App, Device, MetadataStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
APP = "app-a"


@dataclass
class Fleet:
    store: MetadataStore
    telemetry: DuckDBTelemetryStore
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


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    store.create_app(App(APP, "Contoso", "contoso", "0ne000000A1"))
    store.create_app(App("app-b", "Fabrikam", "fabrikam", "0ne000000B2"))
    telemetry = DuckDBTelemetryStore(":memory:", threads=1)
    yield Fleet(store, telemetry)
    telemetry.close()
    store.close()


def columns(result: ExplorerResult) -> dict[str, list[float | None]]:
    return {s.name: v for s, v in zip(result.series, result.values, strict=True)}
