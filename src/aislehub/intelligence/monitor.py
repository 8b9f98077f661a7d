"""Runs the detectors periodically over stored telemetry and records the anomalies.

Why a periodic consumer of the telemetry store, not a step in the ingest pipeline: the
drifts it looks for take days, so a minute of latency costs nothing, while the hot path
stays free of per-message Python work; reading what the store already typed means the
detector sees exactly what the rules and the explorer see; and a restart only has to
re-read the rows after its watermark (the log offset).

Anomalies become alerts through :mod:`aislehub.rules.alerts` once that exists; until
then each is a device event of kind ``anomaly`` (``GET /api/devices/{id}/events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aislehub.intelligence.detector import Anomaly, DetectorConfig, FleetDetector
from aislehub.intelligence.specs import FIELDS, SPECS
from aislehub.store.metadata import MetadataStore

log = logging.getLogger(__name__)

EVENT_KIND = "anomaly"


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
    ) -> None:
        self.telemetry = telemetry
        self.app_id = app_id
        self.record = record
        self.detectors = {t: FleetDetector(f, config) for t, f in SPECS.items()}
        self.watermark: dict[str, int] = {t: -1 for t in SPECS}

    def poll(self) -> list[Anomaly]:
        found: list[Anomaly] = []
        for template_id, detector in self.detectors.items():
            for device_id, ts, reading in self._messages(template_id):
                found += detector.feed(device_id, ts, reading)
        for anomaly in found:
            self.record(anomaly)
        return found

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
