"""Small statistics and the store count the figures are built from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ms", "percentile", "stored_by_phase"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def stored_by_phase(telemetry_path: Path, device_prefix: str) -> dict[str, int]:
    """Stored messages per ``phase`` custom property; read only after the server stopped.

    DuckDB lets one process hold a database file writable; the server holds it while it
    runs, so the bench reads it afterwards, read-only.
    """
    import duckdb

    con = duckdb.connect(str(telemetry_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT coalesce(json_extract_string(properties, '$.phase'), ''), count(*) "
            "FROM messages WHERE starts_with(device_id, ?) GROUP BY 1",
            [device_prefix],
        ).fetchall()
    finally:
        con.close()
    return {str(phase): int(count) for phase, count in rows}


def typing_figures(telemetry_path: Path, device_prefix: str) -> dict[str, int]:
    """How many load devices the store typed by a template, and the field rows it kept
    aside for them (read after the server stopped)."""
    import duckdb

    con = duckdb.connect(str(telemetry_path), read_only=True)
    try:
        [(typed, kept)] = con.execute(
            "SELECT (SELECT count(*) FROM device_catalog WHERE starts_with(device_id, $1) "
            "AND template_id IS NOT NULL), (SELECT count(*) FROM telemetry_unmodeled "
            "WHERE starts_with(device_id, $1))",
            [device_prefix],
        ).fetchall()
    finally:
        con.close()
    return {"typed_devices": int(typed), "unmodeled_rows": int(kept)}
