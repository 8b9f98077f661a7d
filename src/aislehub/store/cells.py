"""The cell map: which cell (ingest stream + telemetry database) holds each app.

A cell is a fault domain: its own JetStream stream (or local log directory) and its own
telemetry database (PostgreSQL URL, or a DuckDB file in the data directory). Apps not in
the map live in the default cell, the one the settings name, so an install without cells
behaves as before. Metadata (devices, twins, rules, users) stays in the one control-plane
store: losing a cell's database stops that cell's telemetry, not its devices' identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from aislehub.store.rows import Tables, utcnow
from aislehub.store.schema import app_cells, apps, cells

__all__ = ["DEFAULT_CELL", "Cell", "CellStore", "check_cell_id"]

DEFAULT_CELL = "default"
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_STREAM = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a JetStream stream name: no dots, no wildcards


@dataclass(frozen=True, slots=True)
class Cell:
    id: str
    stream: str
    telemetry_database: str | None = None  # None: a DuckDB file in the data directory
    created_at: datetime = field(default_factory=utcnow, compare=False)


def check_cell_id(cell_id: str, stream: str) -> str | None:
    """A reason the id or stream name cannot be used, or None."""
    if cell_id == DEFAULT_CELL:
        return f"{DEFAULT_CELL!r} is the cell the settings name; it is not stored"
    if not _ID.fullmatch(cell_id):
        return "a cell id is 1 to 32 of a-z 0-9 - (starting with a letter or digit)"
    if not _STREAM.fullmatch(stream):
        return "a stream name is 1 to 64 of A-Z a-z 0-9 _ -"
    return None


class CellStore(Tables):
    def add(self, cell: Cell) -> Cell:
        """Store a new cell; ValueError if the id or stream is invalid or taken."""
        if (why := check_cell_id(cell.id, cell.stream)) is not None:
            raise ValueError(why)
        try:
            self._write(
                sa.insert(cells).values(
                    id=cell.id,
                    stream=cell.stream,
                    telemetry_database=cell.telemetry_database,
                    created_at=cell.created_at,
                )
            )
        except sa.exc.IntegrityError:
            raise ValueError(f"cell {cell.id!r} or stream {cell.stream!r} exists") from None
        return cell

    def list(self) -> list[Cell]:
        cols = (cells.c.id, cells.c.stream, cells.c.telemetry_database, cells.c.created_at)
        return [Cell(*row) for row in self._rows(sa.select(*cols).order_by(cells.c.id))]

    def get(self, cell_id: str) -> Cell | None:
        return next((c for c in self.list() if c.id == cell_id), None)

    def assign(self, app_id: str, cell_id: str) -> None:
        """Map ``app_id`` to ``cell_id`` (``default``: remove it from the map)."""
        if next(self._rows(sa.select(apps.c.id).where(apps.c.id == app_id)), None) is None:
            raise ValueError(f"there is no app {app_id!r}")
        if cell_id != DEFAULT_CELL and self.get(cell_id) is None:
            raise ValueError(f"there is no cell {cell_id!r}")
        stmts: list[sa.Executable] = [sa.delete(app_cells).where(app_cells.c.app_id == app_id)]
        if cell_id != DEFAULT_CELL:
            stmts.append(
                sa.insert(app_cells).values(app_id=app_id, cell_id=cell_id, moved_at=utcnow())
            )
        self._write(*stmts)

    def mapping(self) -> dict[str, str]:
        """app id -> cell id, for the apps outside the default cell."""
        return dict(self._rows(sa.select(app_cells.c.app_id, app_cells.c.cell_id)))  # type: ignore[arg-type]

    def cell_of(self, app_id: str) -> str:
        return self.mapping().get(app_id, DEFAULT_CELL)
