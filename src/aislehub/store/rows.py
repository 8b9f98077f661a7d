"""What every metadata table module shares: JSON alias, UTC clock, etags, short transactions.

Each table family (devices, templates, device groups, cloud properties) is a small class over
one SQLAlchemy engine; ``Tables`` gives them the same two helpers: read rows, write atomically.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

Json = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_etag() -> str:
    return secrets.token_hex(8)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso_stamp(ts: datetime) -> str:
    """``2026-01-02T03:04:05.000Z``: the form twin metadata and the API show."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Tables:
    """Short synchronous reads and single-transaction writes over one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _rows(self, stmt: sa.Executable) -> Iterator[Any]:
        with self.engine.connect() as conn:
            yield from conn.execute(stmt)

    def _write(self, *stmts: sa.Executable) -> None:
        with self.engine.begin() as conn:
            for stmt in stmts:
                conn.execute(stmt)
