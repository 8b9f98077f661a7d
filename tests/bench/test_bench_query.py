"""``aislehub bench query``, tiny: the command runs, both paths agree, the figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

STATEMENTS = {
    "latest_per_device",
    "windowed_avg_per_device",
    "top_devices_by_max",
    "raw_top_10000_where_value",
}


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    args = ["--rows", "20000", "--devices", "50", "--repeat", "2", "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "aislehub.cli", "bench", "query", *args],
        capture_output=True,
        timeout=55,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-4000:]
    lines = run.stdout.decode().strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line, got {lines[:5]}"
    result: dict[str, Any] = json.loads(lines[0])
    return result


def test_every_statement_is_timed_both_ways(figures: dict[str, Any]) -> None:
    assert (figures["rows"], figures["devices"], figures["repeat"]) == (20000, 50, 2)
    assert set(figures["statements"]) == STATEMENTS
    for name, s in figures["statements"].items():
        assert s["query"].startswith("SELECT"), name
        assert 0 < s["aislehub_median_ms"] <= s["aislehub_p95_ms"], name
        assert 0 < s["sql_median_ms"] <= s["sql_p95_ms"], name
        assert s["ratio"] == pytest.approx(s["aislehub_median_ms"] / s["sql_median_ms"], 0.01)
    assert figures["max_ratio"] == max(s["ratio"] for s in figures["statements"].values())


def test_row_counts_match_the_data(figures: dict[str, Any]) -> None:
    s = figures["statements"]
    assert s["latest_per_device"]["rows_returned"] == 50
    assert s["top_devices_by_max"]["rows_returned"] == 10
    assert (
        0 < s["windowed_avg_per_device"]["rows_returned"] <= 25 * 50
    )  # a day touches 25 hour windows
    assert 0 < s["raw_top_10000_where_value"]["rows_returned"] <= 10000
