"""Runs the detectors periodically over stored telemetry; anomalies become alerts.

Why a periodic consumer of the telemetry store, not a step in the ingest pipeline: the
drifts it looks for take days, so a minute of latency costs nothing, while the hot path
stays free of per-message Python work; reading what the store already typed means the
detector sees exactly what the rules and the explorer see.

Each anomaly is recorded twice (docs/anomaly.md): as a device event of kind ``anomaly``
(``GET /api/devices/{id}/events``) and as an alert in the rules engine's alert store,
under the built-in rule id ``anomaly:<feature>`` (``anomaly:condenserLift`` …). Alerts
are opened the way the engine opens them, through :meth:`RuleStore.checkpoint` under the
consumer name ``anomaly`` (its offset: the newest log offset the monitor has read), so
there is at most one open or acknowledged alert per device and detector; they are not
resolved by the monitor (a drift does not clear by itself): an operator resolves them.

:func:`start_monitor` runs it in ``aislehub serve``, in the process that runs the store
writer, over DuckDB only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from aislehub.intelligence.detector import Anomaly, DetectorConfig, FleetDetector
from aislehub.intelligence.specs import FIELDS, SPECS
from aislehub.settings import Settings
from aislehub.store.metadata import MetadataStore
from aislehub.store.rows import Json, iso_stamp
from aislehub.store.rules import Opening, RuleStore

log = logging.getLogger(__name__)

EVENT_KIND = "anomaly"
RULE_PREFIX = "anomaly:"  # built-in rule ids: never a user rule's (those are slugs)
CONSUMER = "anomaly"  # the monitor's row in the rules engine's checkpoint table
SEVERITY = "warning"
DEFAULT_PERIOD_S = 60.0


def rule_id(feature: str) -> str:
    """The alert's rule id for a detector: ``anomaly:<feature>``."""
    return f"{RULE_PREFIX}{feature}"


@runtime_checkable
class SqlReader(Protocol):
    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]: ...


_ROWS = """
SELECT t.device_id, t.log_offset, epoch_ms(t.ts) / 1000.0, t.name, t.value::VARCHAR
FROM {table} t JOIN device_catalog c ON c.app_id = t.app_id AND c.device_id = t.device_id
WHERE t.app_id = ? AND c.template_id = ? AND t.log_offset > ? AND t.component IS NULL
  AND t.name IN ({names})
"""


class AnomalyMonitor:
    """Reads new telemetry of the templates with detectors; returns and records anomalies."""

    def __init__(
        self,
        telemetry: SqlReader,
        app_id: str,
        record: Callable[[Anomaly], None],
        config: DetectorConfig | None = None,
        alerts: RuleStore | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.app_id = app_id
        self.record = record
        self.alerts = alerts
        self.detectors = {t: FleetDetector(f, config) for t, f in SPECS.items()}
        self.watermark: dict[str, int] = {t: -1 for t in SPECS}

    def poll(self) -> list[Anomaly]:
        found: list[Anomaly] = []
        for template_id, detector in self.detectors.items():
            for device_id, ts, reading in self._messages(template_id):
                found += detector.feed(device_id, ts, reading)
        for anomaly in found:
            self.record(anomaly)
        if found and self.alerts is not None:
            self.open_alerts(found)
        return found

    def open_alerts(self, anomalies: Sequence[Anomaly]) -> int:
        """Open an alert per anomaly, skipped where the device already has an active one
        for that detector; returns how many were opened."""
        assert self.alerts is not None
        state = json.dumps({"watermark": self.watermark}).encode()
        offset = max(self.watermark.values(), default=-1)
        opened = self.alerts.checkpoint(
            CONSUMER, offset, state, [opening(self.app_id, a) for a in anomalies]
        )
        return len(opened)

    def _messages(self, template_id: str) -> list[tuple[str, float, dict[str, Any]]]:
        names = FIELDS[template_id]
        marks = ", ".join("?" for _ in names)
        sql = " UNION ALL ".join(
            _ROWS.format(table=t, names=marks) for t in ("telemetry_num", "telemetry_val")
        )
        params: list[Any] = []
        for _ in range(2):
            params += [self.app_id, template_id, self.watermark[template_id], *names]
        _, rows = self.telemetry.query(sql + " ORDER BY 2", params)
        messages: dict[int, tuple[str, float, dict[str, Any]]] = {}
        for device_id, offset, ts, name, text in rows:
            entry = messages.setdefault(offset, (device_id, float(ts), {}))
            entry[2][name] = json.loads(text) if text is not None else None
            self.watermark[template_id] = max(self.watermark[template_id], offset)
        return list(messages.values())

    async def run(self, stop: asyncio.Event, period_s: float = 60.0) -> None:
        """Poll every ``period_s`` until ``stop``; a failed poll is logged and retried."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.poll)
            except Exception:  # the monitor must not take the server down
                log.exception("anomaly monitor poll failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period_s):
                    await stop.wait()


def event_recorder(store: MetadataStore, app_id: str) -> Callable[[Anomaly], None]:
    """Record anomalies as device events of kind ``anomaly``."""

    def record(anomaly: Anomaly) -> None:
        store.add_event(app_id, anomaly.device_id, EVENT_KIND, anomaly.detail())
        log.warning("anomaly on %s: %s", anomaly.device_id, anomaly.description)

    return record


def record_all(store: MetadataStore, app_id: str, anomalies: Sequence[Anomaly]) -> None:
    recorder = event_recorder(store, app_id)
    for anomaly in anomalies:
        recorder(anomaly)


def opening(app_id: str, anomaly: Anomaly) -> Opening:
    """The alert an anomaly opens (no actions: an operator looks at the device)."""
    at = datetime.fromtimestamp(anomaly.at, UTC)
    detail: Json = {
        "ruleDisplayName": f"Anomaly: {anomaly.description or anomaly.feature}",
        "conditionAt": iso_stamp(at),
        "recordedAt": iso_stamp(datetime.now(UTC)),
        "source": "anomaly monitor",
        "anomaly": anomaly.detail(),
    }
    return Opening(app_id, rule_id(anomaly.feature), anomaly.device_id, SEVERITY, at, detail, ())


def build_monitor(
    store: MetadataStore,
    telemetry: SqlReader,
    app_id: str,
    config: DetectorConfig | None = None,
) -> AnomalyMonitor:
    """A monitor that records device events and opens alerts in ``store``."""
    return AnomalyMonitor(
        telemetry, app_id, event_recorder(store, app_id), config, RuleStore(store.engine)
    )


@dataclass(slots=True)
class MonitorService:
    monitor: AnomalyMonitor
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def start_monitor(
    settings: Settings, store: MetadataStore, telemetry: object, app_id: str
) -> MonitorService | None:
    """Run the monitor beside the store writer, every ``anomaly_period`` seconds (TOML,
    default 60); None, with a log line, when the telemetry store is not DuckDB."""
    if settings.telemetry_database or not isinstance(telemetry, SqlReader):
        log.info(
            "anomaly monitor not started: it reads the DuckDB telemetry store, "
            "and this deployment stores telemetry in PostgreSQL"
        )
        return None
    period = float(settings.extra.get("anomaly_period", DEFAULT_PERIOD_S))
    monitor = build_monitor(store, telemetry, app_id)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop, period), name="anomaly monitor")
    return MonitorService(monitor, stop, task)
