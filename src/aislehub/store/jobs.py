"""Jobs, their per-device outcomes, and scheduled jobs (IoT Central ``/jobs``, ``/scheduledJobs``).

The store keeps job definitions as JSON, exactly as ``aislehub.jobs`` normalised them; it
knows nothing of what a job does. A job's device set is fixed when the job is created
(one ``job_devices`` row per device, each with its batch number), so the per-device
listing, the progress counts and a resume after a restart all read the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from aislehub.store.rows import Json, Tables, aware, new_etag, utcnow
from aislehub.store.schema import job_devices, jobs, scheduled_jobs

# Job statuses (contract §2.11): created → running → complete | cancelled | failed;
# running ⇄ stopped through /stop and /resume.
PENDING, RUNNING, STOPPED = "pending", "running", "stopped"
COMPLETE, CANCELLED, FAILED = "complete", "cancelled", "failed"
ACTIVE = (PENDING, RUNNING)
# Device statuses: pending → running → completed | failed; pending → cancelled.
COMPLETED = "completed"


@dataclass(slots=True)
class Definition:
    """What a job or a scheduled job does (JSON in the API's spellings)."""

    group_id: str
    data: list[Json]
    display_name: str | None = None
    description: str | None = None
    batch: Json | None = None
    cancellation_threshold: Json | None = None
    organizations: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JobRow:
    app_id: str
    id: str
    definition: Definition
    status: str = PENDING
    scheduled_job_id: str | None = None
    reason: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    device_id: str
    status: str
    reason: str | None = None
    batch: int = 0
    updated_at: datetime | None = None


@dataclass(slots=True)
class ScheduledJobRow:
    app_id: str
    id: str
    definition: Definition
    schedule: Json
    enabled: bool = True
    completed: bool = False
    runs: int = 0
    next_run: datetime | None = None
    etag: str = field(default_factory=new_etag)
    created_at: datetime = field(default_factory=utcnow)


_DEFINITION_COLUMNS = (
    "group_id",
    "data",
    "display_name",
    "description",
    "batch",
    "cancellation_threshold",
    "organizations",
)


def _definition_values(d: Definition) -> Json:
    return {name: getattr(d, name) for name in _DEFINITION_COLUMNS}


def _definition(row: Any) -> Definition:
    m = row._mapping
    return Definition(**{name: m[name] for name in _DEFINITION_COLUMNS})


def _job(row: Any) -> JobRow:
    m = row._mapping
    return JobRow(
        m["app_id"],
        m["id"],
        _definition(row),
        m["status"],
        m["scheduled_job_id"],
        m["reason"],
        aware(m["created_at"]) or utcnow(),
        aware(m["started_at"]),
        aware(m["ended_at"]),
    )


def _job_key(app_id: str, job_id: str) -> sa.ColumnElement[bool]:
    return (jobs.c.app_id == app_id) & (jobs.c.id == job_id)


def _devices_of(app_id: str, job_id: str) -> sa.ColumnElement[bool]:
    return (job_devices.c.app_id == app_id) & (job_devices.c.job_id == job_id)


class JobStore(Tables):
    # -- jobs ------------------------------------------------------------------------------
    def create(self, job: JobRow, batches: Sequence[Sequence[str]]) -> bool:
        """Insert a job and its devices (``batches[i]`` = batch i); False if the id exists."""
        rows = [
            {"app_id": job.app_id, "job_id": job.id, "device_id": d, "batch": i, "status": PENDING}
            for i, batch in enumerate(batches)
            for d in batch
        ]
        with self.engine.begin() as conn:
            if conn.execute(sa.select(jobs.c.id).where(_job_key(job.app_id, job.id))).first():
                return False
            conn.execute(
                sa.insert(jobs).values(
                    app_id=job.app_id,
                    id=job.id,
                    scheduled_job_id=job.scheduled_job_id,
                    status=job.status,
                    reason=job.reason,
                    created_at=job.created_at,
                    started_at=job.started_at,
                    ended_at=job.ended_at,
                    **_definition_values(job.definition),
                )
            )
            if rows:
                conn.execute(sa.insert(job_devices), rows)
        return True

    def get(self, app_id: str, job_id: str) -> JobRow | None:
        row = next(self._rows(sa.select(jobs).where(_job_key(app_id, job_id))), None)
        return None if row is None else _job(row)

    def page(
        self, app_id: str, offset: int, limit: int, scheduled_job_id: str | None = None
    ) -> list[JobRow]:
        where = jobs.c.app_id == app_id
        if scheduled_job_id is not None:
            where = where & (jobs.c.scheduled_job_id == scheduled_job_id)
        stmt = (
            sa.select(jobs)
            .where(where)
            .order_by(jobs.c.created_at, jobs.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_job(r) for r in self._rows(stmt)]

    def active(self) -> list[tuple[str, str]]:
        """(app, job) of every job waiting to run or running, oldest first."""
        stmt = (
            sa.select(jobs.c.app_id, jobs.c.id)
            .where(jobs.c.status.in_(ACTIVE))
            .order_by(jobs.c.created_at)
        )
        return [(r[0], r[1]) for r in self._rows(stmt)]

    def set_status(
        self,
        app_id: str,
        job_id: str,
        status: str,
        *,
        when: Iterable[str],
        reason: str | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> bool:
        """Move a job to ``status`` if its status is one of ``when``; whether it moved."""
        values: Json = {"status": status}
        if reason is not None:
            values["reason"] = reason
        if started_at is not None:
            values["started_at"] = sa.func.coalesce(jobs.c.started_at, started_at)
        if ended_at is not None:
            values["ended_at"] = ended_at
        stmt = (
            sa.update(jobs)
            .where(_job_key(app_id, job_id) & jobs.c.status.in_(list(when)))
            .values(values)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def claim(self, app_id: str, job_id: str, runner: str, now: datetime, lease: float) -> bool:
        """Take or renew the right to run an active job until ``now + lease`` seconds:
        granted when nobody holds it, ``runner`` does, or the holder's lease ran out."""
        until = now + timedelta(seconds=lease)
        free = jobs.c.runner.is_(None) | (jobs.c.runner == runner) | (jobs.c.lease_until < now)
        where = _job_key(app_id, job_id) & jobs.c.status.in_(ACTIVE) & free
        stmt = sa.update(jobs).where(where).values(runner=runner, lease_until=until)
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def release(self, app_id: str, job_id: str, runner: str) -> None:
        stmt = (
            sa.update(jobs)
            .where(_job_key(app_id, job_id) & (jobs.c.runner == runner))
            .values(runner=None, lease_until=None)
        )
        self._write(stmt)

    # -- per-device outcomes ---------------------------------------------------------------
    def progress(self, app_id: str, job_ids: Sequence[str]) -> dict[str, Counter[str]]:
        """Device counts by status, per job."""
        d = job_devices.c
        stmt = (
            sa.select(d.job_id, d.status, sa.func.count())
            .where((d.app_id == app_id) & d.job_id.in_(list(job_ids)))
            .group_by(d.job_id, d.status)
        )
        counts: dict[str, Counter[str]] = {j: Counter() for j in job_ids}
        for job_id, status, n in self._rows(stmt):
            counts[job_id][status] = n
        return counts

    def batch_progress(self, app_id: str, job_id: str, batch: int) -> Counter[str]:
        d = job_devices.c
        stmt = (
            sa.select(d.status, sa.func.count())
            .where(_devices_of(app_id, job_id) & (d.batch == batch))
            .group_by(d.status)
        )
        return Counter({status: n for status, n in self._rows(stmt)})

    def devices(self, app_id: str, job_id: str, offset: int, limit: int) -> list[DeviceOutcome]:
        d = job_devices.c
        stmt = (
            sa.select(d.device_id, d.status, d.reason, d.batch, d.updated_at)
            .where(_devices_of(app_id, job_id))
            .order_by(d.batch, d.device_id)
            .offset(offset)
            .limit(limit)
        )
        return [DeviceOutcome(r[0], r[1], r[2], r[3], aware(r[4])) for r in self._rows(stmt)]

    def with_status(self, app_id: str, job_id: str, status: str) -> list[str]:
        d = job_devices.c
        stmt = (
            sa.select(d.device_id)
            .where(_devices_of(app_id, job_id) & (d.status == status))
            .order_by(d.batch, d.device_id)
        )
        return [r[0] for r in self._rows(stmt)]

    def next_batch(self, app_id: str, job_id: str, limit: int) -> tuple[int, list[str]] | None:
        """The lowest batch that still has pending devices, and up to ``limit`` of them."""
        d = job_devices.c
        pending = _devices_of(app_id, job_id) & (d.status == PENDING)
        batch = next(self._rows(sa.select(sa.func.min(d.batch)).where(pending)))[0]
        if batch is None:
            return None
        stmt = (
            sa.select(d.device_id)
            .where(pending & (d.batch == batch))
            .order_by(d.device_id)
            .limit(limit)
        )
        return int(batch), [r[0] for r in self._rows(stmt)]

    def record(self, app_id: str, job_id: str, outcomes: Sequence[DeviceOutcome]) -> None:
        """Set each device's status and reason, in one transaction."""
        if not outcomes:
            return
        d = job_devices.c
        stmt = (
            sa.update(job_devices)
            .where(_devices_of(app_id, job_id) & (d.device_id == sa.bindparam("b_device")))
            .values(
                status=sa.bindparam("b_status"),
                reason=sa.bindparam("b_reason"),
                updated_at=sa.bindparam("b_at"),
            )
        )
        now = utcnow()
        params = [
            {"b_device": o.device_id, "b_status": o.status, "b_reason": o.reason, "b_at": now}
            for o in outcomes
        ]
        with self.engine.begin() as conn:
            conn.execute(stmt, params)

    def move(
        self, app_id: str, job_id: str, before: str, after: str, reason: str | None = None
    ) -> int:
        """Every device of the job in status ``before`` goes to ``after``; how many."""
        stmt = (
            sa.update(job_devices)
            .where(_devices_of(app_id, job_id) & (job_devices.c.status == before))
            .values(status=after, reason=reason, updated_at=utcnow())
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # -- scheduled jobs --------------------------------------------------------------------
    def put_schedule(self, row: ScheduledJobRow) -> ScheduledJobRow:
        row.etag = new_etag()
        key = (scheduled_jobs.c.app_id == row.app_id) & (scheduled_jobs.c.id == row.id)
        self._write(
            sa.delete(scheduled_jobs).where(key),
            sa.insert(scheduled_jobs).values(
                app_id=row.app_id,
                id=row.id,
                schedule=row.schedule,
                enabled=row.enabled,
                completed=row.completed,
                runs=row.runs,
                next_run=row.next_run,
                etag=row.etag,
                created_at=row.created_at,
                **_definition_values(row.definition),
            ),
        )
        return row

    def get_schedule(self, app_id: str, schedule_id: str) -> ScheduledJobRow | None:
        key = (scheduled_jobs.c.app_id == app_id) & (scheduled_jobs.c.id == schedule_id)
        found = self._schedules(key, 0, 1)
        return found[0] if found else None

    def page_schedules(self, app_id: str, offset: int, limit: int) -> list[ScheduledJobRow]:
        return self._schedules(scheduled_jobs.c.app_id == app_id, offset, limit)

    def due_schedules(self, now: datetime) -> list[ScheduledJobRow]:
        s = scheduled_jobs.c
        where = s.enabled & ~s.completed & s.next_run.is_not(None) & (s.next_run <= now)
        return self._schedules(where, 0, 1000)

    def delete_schedule(self, app_id: str, schedule_id: str) -> bool:
        key = (scheduled_jobs.c.app_id == app_id) & (scheduled_jobs.c.id == schedule_id)
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(scheduled_jobs).where(key)).rowcount > 0

    def advance_schedule(
        self, row: ScheduledJobRow, runs: int, next_run: datetime | None, completed: bool
    ) -> bool:
        """Record a firing, unless the schedule changed meanwhile (its etag moved)."""
        s = scheduled_jobs.c
        key = (s.app_id == row.app_id) & (s.id == row.id) & (s.etag == row.etag)
        stmt = (
            sa.update(scheduled_jobs)
            .where(key)
            .values(runs=runs, next_run=next_run, completed=completed, etag=new_etag())
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def _schedules(
        self, where: sa.ColumnElement[bool], offset: int, limit: int
    ) -> list[ScheduledJobRow]:
        stmt = (
            sa.select(scheduled_jobs)
            .where(where)
            .order_by(scheduled_jobs.c.app_id, scheduled_jobs.c.id)
            .offset(offset)
            .limit(limit)
        )
        found = []
        for r in self._rows(stmt):
            m = r._mapping
            found.append(
                ScheduledJobRow(
                    m["app_id"],
                    m["id"],
                    _definition(r),
                    m["schedule"],
                    m["enabled"],
                    m["completed"],
                    m["runs"],
                    aware(m["next_run"]),
                    m["etag"],
                    aware(m["created_at"]) or utcnow(),
                )
            )
        return found
