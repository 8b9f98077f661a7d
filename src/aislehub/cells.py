"""Tenant cells at run time: one ingest log, telemetry store, store writer and rules engine
per cell, and the routing of each app to its cell's parts.

The default cell is the settings' log and store, opened by ``runtime.py`` as before; the
cells in the metadata store's cell map (:mod:`aislehub.store.cells`) are opened here, each
on its own stream (``<stream>`` under subject ``aislehub.<stream>``) or local log
directory, and its own PostgreSQL database or DuckDB file. A cell is a fault domain:
when its database stops, its writer retries (the log keeps the records, devices keep being
acknowledged) and its reads answer 503, while every other cell goes on.

The map is watched every second: a cell added while running is opened, and the devices of
an app moved to another cell are disconnected so that they reconnect into the new one
(docs/operations-scale-out.md, "Tenant cells").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aislehub.errors import ServiceUnavailable
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLog
from aislehub.settings import Settings
from aislehub.store.cells import DEFAULT_CELL, Cell, CellStore
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import MetadataStore

if TYPE_CHECKING:
    from aislehub.hub.hub import DeviceHub
    from aislehub.rules.service import RulesService
    from aislehub.runtime import Telemetry

__all__ = ["CellParts", "CellUnavailable", "Cells", "open_cell_log", "open_cell_telemetry"]

log = logging.getLogger(__name__)

# Starts a cell's rules engine over its log and writer; returns what closes it.
RulesStarter = Callable[[str, IngestLog, StoreWriter | None], Awaitable["RulesService"]]
WriterFactory = Callable[[IngestLog, "Telemetry"], StoreWriter]


@dataclass(slots=True)
class CellParts:
    id: str
    log: IngestLog
    telemetry: Telemetry
    writer: StoreWriter | None = None
    rules: RulesService | None = None

    async def close(self, *, owned: bool = True) -> None:
        """Rules (they checkpoint), then the writer (it drains), then the log and store."""
        if self.rules is not None:
            await self.rules.close()
        if self.writer is not None:
            await self.writer.close()
        if owned:
            await self.log.close()
            self.telemetry.close()


def open_cell_log(settings: Settings, cell: Cell) -> IngestLog:
    """The cell's JetStream stream when NATS is configured, else its own local log."""
    if settings.nats_url:
        from aislehub.ingest.nats_log import NatsLog

        readers = ("store", f"rules@{cell.id}")  # held for even before they first read
        return NatsLog(settings.nats_url, cell.stream, f"aislehub.{cell.stream}", readers=readers)
    return LocalLog(
        settings.data_dir / "cells" / cell.id / "log", commit_interval=settings.commit_interval
    )


def open_cell_telemetry(settings: Settings, cell: Cell) -> Telemetry:
    """The cell's PostgreSQL database, or its own DuckDB file in the data directory."""
    if cell.telemetry_database:
        from aislehub.store.postgres_telemetry import PostgresTelemetryStore

        return PostgresTelemetryStore(cell.telemetry_database)
    path = settings.data_dir / "cells" / cell.id / "telemetry.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBTelemetryStore(path)


class Cells:
    """Every cell this process serves, and which one each app belongs to."""

    def __init__(
        self,
        settings: Settings,
        store: MetadataStore,
        default: CellParts,
        *,
        writer_for: WriterFactory | None = None,
        rules_for: RulesStarter | None = None,
    ) -> None:
        self.settings = settings
        self.map = CellStore(store.engine)
        self.default = default
        self._writer_for = writer_for  # None: this process does not run the ingest role
        self._rules_for = rules_for
        self._cells: dict[str, CellParts] = {DEFAULT_CELL: default}
        self._app_cell: dict[str, str] = {}
        self._failed: dict[str, str] = {}  # cell id -> why it could not be opened

    # -- routing ---------------------------------------------------------------------

    def cell_id(self, app_id: str) -> str:
        return self._app_cell.get(app_id, DEFAULT_CELL)

    def parts_for(self, app_id: str) -> CellParts:
        cell_id = self.cell_id(app_id)
        parts = self._cells.get(cell_id)
        if parts is None:
            why = self._failed.get(cell_id, "it is not open in this process yet")
            raise CellUnavailable(f"cell {cell_id!r} of app {app_id!r} is unavailable: {why}")
        return parts

    def log_for(self, app_id: str) -> IngestLog:
        return self.parts_for(app_id).log

    def telemetry_for(self, app_id: str) -> Telemetry:
        return self.parts_for(app_id).telemetry

    def ids(self) -> list[str]:
        return list(self._cells)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Read the map and open every stored cell (a cell that fails to open is retried
        by the watch; its apps' devices are refused meanwhile)."""
        await self._sync()

    async def run_watch(self, hub: DeviceHub, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                moved = await self._sync()
            except Exception:
                log.exception("reading the cell map failed; retrying")
                continue
            for app_id in moved:
                for key in hub.links.attached():
                    link = hub.links.get(key)
                    if key[0] == app_id and link is not None:
                        link.close("the app moved to another cell")

    async def close(self) -> None:
        """Close every cell but the default one (runtime.py closes that)."""
        for cell_id, parts in list(self._cells.items()):
            if cell_id != DEFAULT_CELL:
                try:
                    await parts.close()
                except Exception:  # the other cells still close
                    log.exception("closing cell %s failed", cell_id)
        self._cells = {DEFAULT_CELL: self.default}

    async def _sync(self) -> set[str]:
        """Reload the map, open new cells; the apps whose cell changed."""
        stored, mapping = await asyncio.to_thread(self._read_map)
        for cell in stored:
            if cell.id not in self._cells:
                await self._open(cell)
        moved = {
            app
            for app in set(mapping) | set(self._app_cell)
            if mapping.get(app, DEFAULT_CELL) != self._app_cell.get(app, DEFAULT_CELL)
        }
        self._app_cell = mapping
        return moved

    def _read_map(self) -> tuple[list[Cell], dict[str, str]]:
        return self.map.list(), self.map.mapping()

    async def _open(self, cell: Cell) -> None:
        try:
            telemetry = await asyncio.to_thread(open_cell_telemetry, self.settings, cell)
        except Exception as exc:  # a database that is down: try again at the next sync
            self._note_failure(cell.id, f"its telemetry database: {exc}")
            return
        ingest_log = open_cell_log(self.settings, cell)
        try:
            await ingest_log.start()
        except Exception as exc:
            telemetry.close()
            self._note_failure(cell.id, f"its ingest log: {exc}")
            return
        parts = CellParts(cell.id, ingest_log, telemetry)
        try:
            if self._writer_for is not None:
                parts.writer = self._writer_for(ingest_log, telemetry)
                await parts.writer.start()
            if self._rules_for is not None:
                parts.rules = await self._rules_for(cell.id, ingest_log, parts.writer)
        except Exception as exc:  # release what opened, so the next sync starts clean
            with contextlib.suppress(Exception):
                await parts.close()
            self._note_failure(cell.id, f"its consumers: {exc}")
            return
        self._cells[cell.id] = parts
        self._failed.pop(cell.id, None)
        log.info("cell %s open: stream %s", cell.id, cell.stream)

    def _note_failure(self, cell_id: str, why: str) -> None:
        if self._failed.get(cell_id) != why:
            log.error("cell %s cannot be opened: %s", cell_id, why)
        self._failed[cell_id] = why

    def status(self) -> list[dict[str, Any]]:
        """Each cell's state, for /readyz-style reports and the CLI."""
        out: list[dict[str, Any]] = [{"id": c, "open": True} for c in self._cells]
        out += [{"id": c, "open": False, "error": why} for c, why in self._failed.items()]
        return out


class CellUnavailable(ServiceUnavailable):
    """An app's cell is not open in this process (its database or stream is down)."""
