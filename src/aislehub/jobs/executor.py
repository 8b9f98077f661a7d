"""Running one job: its batches one after another, each device's outcome recorded.

A batch runs in *rounds* of at most ``concurrency`` devices: the round's devices are
marked ``running`` (one write), their operations run concurrently, and their outcomes
are written together. Between rounds the executor

* re-reads the job's status: ``/stop`` (from this process or the CLI) sets ``stopped``,
  and the executor returns, leaving the remaining devices ``pending`` for ``/resume``;
* evaluates the cancellation threshold (``model.Threshold``) over the failures so far,
  of the batch (``batch: true``) or of the whole job. When it trips the job is
  ``cancelled`` and every device still pending becomes ``cancelled``.

So a threshold is checked after every round, never in the middle of one: with batches of
at most ``concurrency`` devices (64) that is after every batch. When no device is left
the job is ``complete`` (failed devices included, as IoT Central reports it).

Resource handling: the executor owns no task; the service runs it as one named task per
job. Cancelling that task (server shutdown) leaves the round in flight marked
``running``; the next process resolves those devices before resuming (``service``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aislehub.hub.hub import DeviceHub
from aislehub.jobs.model import Threshold
from aislehub.jobs.operations import DEFAULT_TIMEOUTS, Timeouts, run_on_device
from aislehub.store.jobs import (
    CANCELLED,
    COMPLETE,
    FAILED,
    PENDING,
    RUNNING,
    DeviceOutcome,
    JobRow,
    JobStore,
)

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 64  # devices in flight per job; bounds sockets and method futures


class JobExecutor:
    def __init__(
        self,
        hub: DeviceHub,
        jobs: JobStore,
        clock: Callable[[], datetime],
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.hub = hub
        self.jobs = jobs
        self.clock = clock
        self.timeouts = timeouts
        self.concurrency = concurrency

    async def run(self, app_id: str, job_id: str, renew: Callable[[], bool]) -> str:
        """Run the job until it ends or is stopped; its status when the executor returns.
        ``renew`` renews this process's claim on the job before each round; when it fails
        (another process took the job over) the executor returns at once."""
        now = self.clock()
        if not self.jobs.set_status(
            app_id, job_id, RUNNING, when=(PENDING, RUNNING), started_at=now
        ):
            job = self.jobs.get(app_id, job_id)
            return job.status if job else FAILED
        job = self.jobs.get(app_id, job_id)
        assert job is not None
        threshold = Threshold.of(job.definition.cancellation_threshold)
        last_batch: int | None = None
        while True:
            current = self.jobs.get(app_id, job_id)
            if current is None or current.status != RUNNING or not renew():
                return current.status if current else FAILED
            if threshold is not None and self._tripped(job, threshold, last_batch):
                return self._cancel(job, threshold)
            round_ = self.jobs.next_batch(app_id, job_id, self.concurrency)
            if round_ is None:
                self.jobs.set_status(
                    app_id, job_id, COMPLETE, when=(RUNNING,), ended_at=self.clock()
                )
                return COMPLETE
            last_batch = round_[0]
            await self._round(job, *round_)

    async def _round(self, job: JobRow, batch: int, device_ids: list[str]) -> None:
        self.jobs.record(
            job.app_id, job.id, [DeviceOutcome(d, RUNNING, batch=batch) for d in device_ids]
        )
        data = job.definition.data
        outcomes = await asyncio.gather(
            *(run_on_device(self.hub, job.app_id, d, data, self.timeouts) for d in device_ids)
        )
        self.jobs.record(job.app_id, job.id, outcomes)
        failed = sum(1 for o in outcomes if o.status == FAILED)
        log.info(
            "job %s/%s batch %d: %d devices, %d failed",
            job.app_id,
            job.id,
            batch,
            len(outcomes),
            failed,
        )

    def _tripped(self, job: JobRow, threshold: Threshold, batch: int | None) -> bool:
        """Failures so far against the threshold: in ``batch`` (the one the last round
        ran), or in the whole job."""
        if threshold.per_batch:
            if batch is None:
                return False
            counts = self.jobs.batch_progress(job.app_id, job.id, batch)
        else:
            counts = self.jobs.progress(job.app_id, [job.id])[job.id]
        return threshold.tripped(counts[FAILED], sum(counts.values()))

    def _cancel(self, job: JobRow, threshold: Threshold) -> str:
        scope = "a batch" if threshold.per_batch else "the job"
        unit = "" if threshold.type == "number" else " %"
        reason = (
            f"Cancelled: failures in {scope} reached the cancellation threshold "
            f"({threshold.value:g}{unit})."
        )
        self.jobs.move(job.app_id, job.id, PENDING, CANCELLED, reason)
        self.jobs.set_status(
            job.app_id, job.id, CANCELLED, when=(RUNNING,), reason=reason, ended_at=self.clock()
        )
        return CANCELLED
