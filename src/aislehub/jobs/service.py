"""Jobs as a service: create, stop, resume, rerun, schedule, and run them in the server.

``JobService.start(app_id, body) -> job id`` is the entry point for other features (the
rules engine's ``job`` action): it checks ``body`` (a ``Job`` as the REST API takes it)
exactly as ``PUT /jobs/{id}`` does and queues the job under a new id.

Running (``run``, one task of the server): a TaskGroup holds the scheduler loop and one
task per running job, named ``job <app>/<id>``. The dispatcher starts a task for every
job whose status is ``pending`` or ``running`` and has none yet: jobs created in this
process wake it at once, jobs created or resumed by another process (the CLI writes to
the metadata store) are seen within ``poll_interval``.

Claims: a job is run by one server process at a time. The process claims it in the
store (``runner``, ``lease_until``) before running it and renews the claim before every
round; a claim whose lease ran out (its process died) can be taken by another process,
so with ``--workers`` or several servers on one metadata store each job runs once.

Restart: job state lives in the metadata store, so a job that was running when the
server stopped is running again when a server starts, from its first batch with pending
devices. Devices that were *in flight* (marked ``running``) when the previous runner
stopped are resolved when the job is claimed anew: for a command job they become
``failed`` with the reason "interrupted" (the device may or may not have run the
command, and running a command twice is never assumed safe; rerun the job's failures to
retry them); for property, cloud-property and template jobs, which are idempotent, they
go back to ``pending`` and run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aislehub.errors import Conflict, NotFound
from aislehub.hub.hub import DeviceHub
from aislehub.hub.templates import TemplateCatalog
from aislehub.jobs.checks import check_definition, target_devices
from aislehub.jobs.executor import DEFAULT_CONCURRENCY, JobExecutor
from aislehub.jobs.model import job_kind, parse_definition, split_batches
from aislehub.jobs.operations import DEFAULT_TIMEOUTS, Timeouts
from aislehub.jobs.schedule import Schedule
from aislehub.store.jobs import (
    ACTIVE,
    CANCELLED,
    COMPLETE,
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    Definition,
    JobRow,
    JobStore,
    ScheduledJobRow,
)
from aislehub.store.metadata import MetadataStore
from aislehub.store.rows import utcnow

log = logging.getLogger(__name__)

INTERRUPTED = (
    "Interrupted: the server stopped while the command was in flight; the device may or "
    "may not have run it."
)
_ENDED = (COMPLETE, CANCELLED, FAILED, STOPPED)


class JobService:
    def __init__(
        self,
        store: MetadataStore,
        templates: TemplateCatalog,
        hub: DeviceHub | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll_interval: float = 1.0,
        tick_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.templates = templates
        self.hub = hub
        self.jobs = JobStore(store.engine)
        self.clock = clock
        self.timeouts = timeouts
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.tick_interval = tick_interval
        self.runner_id = uuid.uuid4().hex
        # A claim outlives the longest round (a command's connect and response timeouts).
        self.lease = max(60.0, 2 * (timeouts.connect + timeouts.response) + 10)
        self._wake: asyncio.Event | None = None
        self._running: set[tuple[str, str]] = set()

    # -- jobs ------------------------------------------------------------------------------
    def start(self, app_id: str, body: Mapping[str, Any]) -> str:
        """Create and queue a job from a ``Job`` body under a new id; that id."""
        job_id = str(uuid.uuid4())
        self.create(app_id, job_id, body)
        return job_id

    def create(self, app_id: str, job_id: str, body: Mapping[str, Any]) -> JobRow:
        """``PUT /jobs/{id}``: 409 if the id is taken (a job cannot be replaced)."""
        return self._create(app_id, job_id, parse_definition(body))

    def _create(
        self,
        app_id: str,
        job_id: str,
        definition: Definition,
        scheduled_job_id: str | None = None,
        device_ids: list[str] | None = None,
    ) -> JobRow:
        if self.jobs.get(app_id, job_id) is not None:
            raise Conflict(f"Job {job_id!r} already exists; a job cannot be replaced.")
        definition = check_definition(self.store, self.templates, app_id, definition)
        if device_ids is None:
            device_ids = target_devices(self.store, app_id, definition)
        job = JobRow(app_id, job_id, definition, scheduled_job_id=scheduled_job_id)
        if not self.jobs.create(job, split_batches(device_ids, definition.batch)):
            raise Conflict(f"Job {job_id!r} already exists; a job cannot be replaced.")
        self.wake()
        return job

    def get(self, app_id: str, job_id: str) -> JobRow:
        job = self.jobs.get(app_id, job_id)
        if job is None:
            raise NotFound(f"Job {job_id!r} was not found.")
        return job

    def stop(self, app_id: str, job_id: str) -> None:
        """Devices in flight finish; the others stay pending until ``resume``."""
        job = self.get(app_id, job_id)
        if job.status == STOPPED:
            return
        if not self.jobs.set_status(app_id, job_id, STOPPED, when=ACTIVE):
            raise Conflict(f"Job {job_id!r} is {job.status}; only a running job can be stopped.")

    def resume(self, app_id: str, job_id: str) -> None:
        job = self.get(app_id, job_id)
        if job.status in ACTIVE:
            return
        if not self.jobs.set_status(app_id, job_id, RUNNING, when=(STOPPED,)):
            raise Conflict(f"Job {job_id!r} is {job.status}; only a stopped job can be resumed.")
        self.wake()

    def rerun(self, app_id: str, job_id: str, rerun_id: str) -> JobRow:
        """A new job ``rerun_id``: the same definition, over the devices that failed."""
        job = self.get(app_id, job_id)
        if job.status not in _ENDED:
            raise Conflict(f"Job {job_id!r} is {job.status}; rerun it once it has ended.")
        failed = self.jobs.with_status(app_id, job_id, FAILED)
        if not failed:
            raise Conflict(f"Job {job_id!r} has no failed devices to rerun.")
        return self._create(app_id, rerun_id, job.definition, job.scheduled_job_id, failed)

    # -- scheduled jobs --------------------------------------------------------------------
    def put_schedule(
        self, app_id: str, schedule_id: str, body: Mapping[str, Any], enabled: bool
    ) -> ScheduledJobRow:
        definition = check_definition(self.store, self.templates, app_id, parse_definition(body))
        schedule = Schedule.parse(body.get("schedule"))
        current = self.jobs.get_schedule(app_id, schedule_id)
        runs = current.runs if current is not None else 0
        next_run = schedule.occurrence(runs)
        row = ScheduledJobRow(
            app_id,
            schedule_id,
            definition,
            schedule.to_json(),
            enabled,
            completed=next_run is None,
            runs=runs,
            next_run=next_run,
        )
        if current is not None:
            row.created_at = current.created_at
        saved = self.jobs.put_schedule(row)
        self.wake()
        return saved

    def tick(self) -> list[JobRow]:
        """Fire every scheduled job due now; the jobs created."""
        now = self.clock()
        created = []
        for row in self.jobs.due_schedules(now):
            schedule = Schedule.parse(row.schedule)
            due = schedule.due(row.runs, now)
            if due is None:  # the schedule changed under us; recompute its next run
                nxt = schedule.occurrence(row.runs)
                self.jobs.advance_schedule(row, row.runs, nxt, nxt is None)
                continue
            index, runs = due
            nxt = schedule.occurrence(runs)
            if not self.jobs.advance_schedule(row, runs, nxt, nxt is None):
                continue  # edited or fired by someone else meanwhile
            job = self._fire(row, index + 1)
            if job is not None:
                created.append(job)
        return created

    def _fire(self, row: ScheduledJobRow, number: int) -> JobRow | None:
        name = f"{row.definition.display_name or row.id} - {number}"
        definition = dataclasses.replace(row.definition, display_name=name)
        job_id = str(uuid.uuid4())
        try:
            return self._create(row.app_id, job_id, definition, scheduled_job_id=row.id)
        except Exception as exc:  # the group or template went away: record a failed job
            reason = getattr(exc, "message", str(exc))
            log.warning("scheduled job %s/%s could not start: %s", row.app_id, row.id, reason)
            job = JobRow(row.app_id, job_id, definition, FAILED, row.id, reason)
            job.ended_at = self.clock()
            self.jobs.create(job, [])
            return job

    # -- running ---------------------------------------------------------------------------
    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Run jobs and schedules until cancelled (the server's lifetime)."""
        if self.hub is None:
            raise RuntimeError("JobService.run needs the device hub")
        executor = JobExecutor(self.hub, self.jobs, self.clock, self.timeouts, self.concurrency)
        self._wake = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._schedule_loop(), name="job scheduler")
            while True:
                self._wake.clear()
                for key in self.jobs.active():
                    if key not in self._running and self._claim(*key):
                        self._running.add(key)
                        name = f"job {key[0]}/{key[1]}"
                        tg.create_task(self._execute(executor, *key), name=name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _claim(self, app_id: str, job_id: str) -> bool:
        return self.jobs.claim(app_id, job_id, self.runner_id, self.clock(), self.lease)

    def recover(self, app_id: str, job_id: str) -> int:
        """Resolve the devices a previous runner left in flight (see the module doc)."""
        job = self.jobs.get(app_id, job_id)
        if job is not None and job_kind(job.definition) == "command":
            return self.jobs.move(app_id, job_id, RUNNING, FAILED, INTERRUPTED)
        return self.jobs.move(app_id, job_id, RUNNING, PENDING)

    async def _execute(self, executor: JobExecutor, app_id: str, job_id: str) -> None:
        try:
            if moved := self.recover(app_id, job_id):
                log.info(
                    "job %s/%s: %d devices were in flight at the last stop", app_id, job_id, moved
                )
            status = await executor.run(app_id, job_id, lambda: self._claim(app_id, job_id))
            log.info("job %s/%s: %s", app_id, job_id, status)
        except Exception:
            log.exception("job %s/%s failed", app_id, job_id)
            ended = self.clock()
            self.jobs.set_status(
                app_id, job_id, FAILED, when=ACTIVE, reason="internal error", ended_at=ended
            )
        finally:
            self.jobs.release(app_id, job_id, self.runner_id)
            self._running.discard((app_id, job_id))
            self.wake()

    async def _schedule_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.tick()
            except Exception:
                log.exception("scheduled jobs: tick failed")


def timeouts_from(extra: Mapping[str, Any]) -> Timeouts:
    """Command-job timeouts from the ``[jobs]`` table of ``aislehub.toml``:
    ``command_connect_timeout`` (s, default 0) and ``command_response_timeout`` (default 30)."""
    table = extra.get("jobs")
    if not isinstance(table, Mapping):
        return DEFAULT_TIMEOUTS
    return Timeouts(
        float(table.get("command_connect_timeout", DEFAULT_TIMEOUTS.connect)),
        float(table.get("command_response_timeout", DEFAULT_TIMEOUTS.response)),
    )
