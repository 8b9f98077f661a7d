"""``aislehub bench explorer`` scaled down: the figures are there and both sides agree."""

from __future__ import annotations

from pathlib import Path

from aislehub.bench.explorer import ExplorerOptions, render_explorer_table, run_explorer_bench
from tests.services import require_postgres


def test_bench_explorer_smoke() -> None:
    chromium = Path("/usr/bin/chromium").exists()
    opts = ExplorerOptions(
        devices=12, hours=0.5, repeat=2, chart_points=20_000, browser=chromium, verbose=False
    )
    figures = run_explorer_bench(opts)
    assert figures["rows"] == 12 * 1800
    # 10 devices and "other" over 30 minutes, 11 legend totals, the count folded into other
    assert figures["same_cells"] and figures["cells"] == 11 * 30 + 11 + 1
    assert figures["explorer_p50_ms"] > 0 and figures["ratio"] > 0
    if chromium:
        assert figures["chart_raw_points"] == 12 * 1800 and figures["first_paint_ms"] > 0
        steps = figures["first_paint_steps_ms"]
        assert set(steps) == {"page", "dom_ready", "server", "transfer", "parse", "draw"}
    assert "ratio" in render_explorer_table(figures)


def test_bench_explorer_postgres_smoke() -> None:
    """``--backend postgres``: the embedded figures and PostgreSQL's, from the same data."""
    admin = require_postgres().render_as_string(hide_password=False)
    opts = ExplorerOptions(
        devices=12,
        hours=1.5,  # a whole hour: the keys' totals read the hourly rollup
        repeat=2,
        browser=False,
        verbose=False,
        backend="postgres",
        postgres_admin=admin,
    )
    figures = run_explorer_bench(opts)
    pg = figures["postgres"]
    assert figures["same_cells"] and pg["same_cells"]
    assert pg["rows"] == figures["rows"] == 12 * 5400 and pg["rollup_rows"] == 12 * 90
    assert pg["cells"] == figures["cells"] == 11 * 90 + 11 + 1
    assert pg["explorer_p50_ms"] > 0 and pg["ratio"] > 0
    assert "telemetry_1m" in pg["plan"] and "telemetry_1h" in pg["plan"]
    table = render_explorer_table(figures)
    assert "PostgreSQL" in table and table.count("ratio") == 2
