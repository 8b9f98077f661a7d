"""The rules feature in one process: engine, action runner and log retention, started together.

``runtime.py`` calls :func:`start_rules` after the store writer has started and
:meth:`RulesService.close` before it closes the writer. The store writer stops truncating
the log itself (``truncate_log = False``): :class:`LogRetention` truncates below the lower
of the two consumers' committed offsets instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aislehub.hub.hub import DeviceHub
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.log import IngestLog
from aislehub.ingest.retention import LogRetention
from aislehub.metrics import Metrics
from aislehub.rules.actions import ActionConfig, ActionRunner, JobStarter
from aislehub.rules.engine import RulesEngine
from aislehub.settings import Settings
from aislehub.store.metadata import MetadataStore
from aislehub.store.rules import RuleStore

__all__ = ["RulesService", "start_rules"]


@dataclass(slots=True)
class RulesService:
    engine: RulesEngine
    actions: ActionRunner
    retention: LogRetention | None  # None: the store writer runs in another process
    retention_task: asyncio.Task[None] | None

    async def close(self) -> None:
        """Engine first (it checkpoints), then the actions (pending ones stay recorded)."""
        if self.retention_task is not None:
            self.retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.retention_task
        await self.engine.close()
        await self.actions.close()
        if self.retention is not None:
            await self.retention.truncate()


def action_config(settings: Settings) -> ActionConfig:
    return ActionConfig(
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_from=settings.smtp_from,
        attempts=settings.action_attempts,
        backoff=settings.action_backoff,
    )


async def start_rules(
    settings: Settings,
    store: MetadataStore,
    hub: DeviceHub,
    log: IngestLog,
    writer: StoreWriter | None,
    metrics: Metrics,
    jobs: JobStarter | None = None,
    name: str = "rules",
) -> RulesService:
    """``name`` keys the engine's checkpoint and names it as the log's reader: one per log
    (``rules@<cell>`` per tenant cell).

    With the store writer in this process, retention here truncates below both; without it
    (``--role rules`` on its own), the writer's process truncates, and the log keeps what
    this named reader has not acknowledged (:meth:`IngestLog.acknowledge`)."""
    actions = ActionRunner(RuleStore(store.engine), hub, action_config(settings), jobs)
    await actions.start()
    engine = RulesEngine(log, store, actions, hub.templates.get, consumer_name=name)
    await engine.start()
    retention, task = None, None
    if writer is not None:
        writer.truncate_log = False
        offsets = [lambda: writer.stored_offset, lambda: engine.committed_offset]
        retention = LogRetention(log, offsets)
        task = asyncio.create_task(retention.run(), name=f"ingest log retention ({name})")
    if name == "rules":  # the default cell's engine; other cells' lag is in their logs
        metrics.gauge("rules_lag_records", lambda: float(engine.lag))
        metrics.gauge("rules_loaded", lambda: float(engine.stats.rules))
        metrics.gauge("rules_watermark_lag_seconds", lambda: engine.watermark_lag)
        metrics.gauge("alerts_opened_total", lambda: float(engine.stats.opened))
        metrics.gauge(
            "rules_cpu_seconds_total",
            lambda: engine.stats.cpu_seconds + engine.stats.checkpoint_cpu_seconds,
        )
    return RulesService(engine, actions, retention, task)
