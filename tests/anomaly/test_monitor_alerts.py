"""Anomalies become alerts: the monitor over a simulated cooler fleet opens one alert per
device and detector in the rules engine's alert store (and keeps the device event); the
server runs the monitor beside its store writer, over DuckDB only."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from aislehub.intelligence.monitor import (
    CONSUMER,
    EVENT_KIND,
    AnomalyMonitor,
    build_monitor,
    start_monitor,
)
from aislehub.intelligence.specs import COOLER, FIELDS
from aislehub.simulator.physics import build_model
from aislehub.simulator.profile import FaultRecord, load_profile, plan_devices
from aislehub.store.metadata import App, MetadataStore
from aislehub.store.rules import AlertFilter, RuleStore
from aislehub.templates import load

T0 = 1_767_225_600.0  # 2026-01-01T00:00Z
DAY = 86400.0
APP = "app1"


class StoredTelemetry:
    """Answers the monitor's query as the telemetry store would, from rows kept here:
    (device, log offset, epoch s, field name, JSON text) of the root component."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, str, str]] = []

    def add(self, device_id: str, ts: float, reading: dict[str, Any]) -> None:
        offset = len(self.rows)
        for name in FIELDS[COOLER]:
            self.rows.append((device_id, offset, ts, name, json.dumps(reading[name])))

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        assert "telemetry_num" in sql and "telemetry_val" in sql
        template, after = params[1], params[2]
        rows = [r for r in self.rows if template == COOLER and r[1] > after]
        return ["device_id", "log_offset", "ts", "name", "value"], rows


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    s.create_app(App(APP, "App", APP, "0ne00000001"))
    yield s
    s.close()


def simulate_coolers(telemetry: StoredTelemetry, until: float, models: list[Any]) -> None:
    """Every cooler's reading each 5 simulated minutes up to ``until``."""
    t = models[0].now
    while t < until:
        t += 300.0
        for m in models:
            m.advance(t)
            telemetry.add(m.plan.device_id, t, m.reading())


def coolers(count: int, worn: str, start: float, duration: float) -> list[Any]:
    profile = load_profile(load("connected-cooler").simulator)
    plans = plan_devices(profile, count, seed=5)
    fault = FaultRecord(worn, "compressorDegrading", start, start + duration)
    physics = {**profile.physics, "stepSeconds": 30}  # coarse steps: days in a second
    return [build_model("cooler", physics, p, [fault], T0) for p in plans]


def test_a_worn_compressor_opens_one_alert_per_detector_and_keeps_the_event(
    store: MetadataStore,
) -> None:
    telemetry = StoredTelemetry()
    models = coolers(4, "cooler-002", T0 + 3 * DAY, 3 * DAY)
    monitor = build_monitor(store, telemetry, APP)
    rules = RuleStore(store.engine)

    simulate_coolers(telemetry, T0 + 3 * DAY, models)  # the baseline is learnt: quiet
    assert monitor.poll() == []
    simulate_coolers(telemetry, T0 + 7 * DAY, models)  # the wear sets in
    found = monitor.poll()
    assert found and {a.device_id for a in found} == {"cooler-002"}
    first = {a.feature: a.at for a in reversed(found)}
    assert all(T0 + 3 * DAY < at < T0 + 6 * DAY for at in first.values())  # before full wear
    assert len(found) > len(first)  # flagged again after a day's quiet: still one alert each

    alerts = rules.alerts(APP, AlertFilter(), 0, 100)
    assert sorted(a.rule_id for a in alerts) == sorted(f"anomaly:{f}" for f in first)
    for alert in alerts:
        assert (alert.device_id, alert.state, alert.severity) == ("cooler-002", "open", "warning")
        assert alert.detail["anomaly"]["feature"] == alert.rule_id.removeprefix("anomaly:")
        assert alert.detail["ruleDisplayName"].startswith("Anomaly: ")
    events = store.events(APP, "cooler-002", kinds=[EVENT_KIND])
    assert len(events) == len(found)

    # The same drift flagged again (a restart re-reads the history): no second alert.
    assert monitor.open_alerts(found) == 0
    assert len(rules.alerts(APP, AlertFilter(state="open"), 0, 100)) == len(alerts)
    # Resolved by an operator, a later flag opens a new one.
    rules.resolve(APP, alerts[0].id, "operator")
    assert monitor.open_alerts([f for f in found if f"anomaly:{f.feature}" == alerts[0].rule_id])
    assert rules.load_checkpoint(CONSUMER) is not None  # the monitor's read position


def test_a_monitor_without_an_alert_store_records_events_only(store: MetadataStore) -> None:
    telemetry = StoredTelemetry()
    models = coolers(2, "cooler-001", T0 + 3 * DAY, 2 * DAY)
    recorded: list[Any] = []
    monitor = AnomalyMonitor(telemetry, APP, recorded.append)
    simulate_coolers(telemetry, T0 + 6 * DAY, models)
    assert monitor.poll() == recorded and recorded
    assert RuleStore(store.engine).alerts(APP, AlertFilter(), 0, 10) == []


def test_not_started_over_postgresql(
    store: MetadataStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aislehub.settings import load_settings

    settings = load_settings(tmp_path, env={}).with_overrides(
        telemetry_database="postgresql://127.0.0.1:1/none"
    )
    with caplog.at_level(logging.INFO, logger="aislehub.intelligence.monitor"):
        assert start_monitor(settings, store, StoredTelemetry(), APP) is None
    assert "anomaly monitor not started" in caplog.text


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_serve_runs_the_monitor_beside_the_store_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aislehub.install import initialize
    from aislehub.runtime import running
    from aislehub.settings import load_settings

    host = "127.0.0.78"

    def free_port() -> int:
        with socket.create_server((host, 0)) as sock:
            return int(sock.getsockname()[1])

    data_dir = tmp_path / "install"
    initialize(data_dir, [host], [])
    settings = load_settings(data_dir, env={}).with_overrides(
        bind=host, mqtt_port=free_port(), ws_port=0, http_port=free_port()
    )
    settings = dataclasses.replace(settings, extra={**settings.extra, "anomaly_period": 0.1})
    with caplog.at_level(logging.INFO, logger="aislehub.intelligence.monitor"):
        async with running(settings):
            await asyncio.sleep(0.5)  # several polls of the real (empty) DuckDB store
            tasks = [t for t in asyncio.all_tasks() if t.get_name() == "anomaly monitor"]
            assert len(tasks) == 1 and not tasks[0].done()
        assert tasks[0].done()
    assert "anomaly monitor poll failed" not in caplog.text

    gateway_only = dataclasses.replace(settings, roles="gateway,api")
    async with running(gateway_only):
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "anomaly monitor"]
