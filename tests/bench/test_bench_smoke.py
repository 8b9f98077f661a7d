"""``aislehub bench ingest``, tiny, end to end: the command runs and its figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from aislehub.bench.mosquitto import mosquitto_available

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "aislehub.cli",
        "bench",
        "ingest",
        "--devices",
        "20",
        "--seconds",
        "2",
        "--processes",
        "1",
        "--window",
        "10",
        "--json",
    ]
    if not mosquitto_available():
        args.append("--no-reference")
    run = subprocess.run(args, capture_output=True, timeout=55)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-4000:]
    lines = run.stdout.decode().strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line, got {lines[:5]}"
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.mark.parametrize("phase", ["plain", "tls", "typed"])
def test_aislehub_phase_acks_and_stores_everything(figures: dict[str, Any], phase: str) -> None:
    f = figures[phase]
    assert f["connections"] == 20 and f["connect_failures"] == 0
    assert f["acked_per_s"] > 0 and f["acked"] >= f["acked_in_window"] > 0
    assert f["acked_per_s_to_drain"] > 0
    assert f["lost_connections"] == 0, f["errors"]
    assert f["stored"] >= f["acked"], "an acknowledged message is missing from the store"
    assert f["stored_per_s"] > 0
    assert f["latency_samples"] > 0 and f["latency_missed"] == 0


def test_typed_phase_types_every_field(figures: dict[str, Any]) -> None:
    assert figures["typed"]["typed_devices"] == 20
    assert figures["typed"]["unmodeled_rows"] == 0
    ratio = figures["typed"]["acked_per_s"] / figures["plain"]["acked_per_s"]
    assert figures["typed_ratio"] == pytest.approx(ratio, rel=1e-2)


def test_summary_figures(figures: dict[str, Any]) -> None:
    assert figures["stored_per_s"] == figures["plain"]["stored_per_s"]
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["peak_rss_mb"] > 10


def test_reference_run(figures: dict[str, Any]) -> None:
    if not mosquitto_available():
        pytest.skip("/usr/sbin/mosquitto is not installed: no reference run")
    ref = figures["mosquitto"]
    assert ref["connections"] == 20 and ref["acked_per_s"] > 0
    assert ref["subscriber_received"] >= ref["acked"]
    assert figures["ratio"] == pytest.approx(
        figures["plain"]["acked_per_s"] / ref["acked_per_s"], rel=1e-2
    )
