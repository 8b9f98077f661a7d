"""``/scheduledJobs`` (contract §2.12): job definitions that fire on a schedule.

A scheduled job is checked like a job (group, template, values) plus its ``schedule``
(``start`` required; ``recurrence`` daily, weekly or monthly; ``end`` a date or a number
of occurrences). ``enabled`` defaults to true (the spec's example; the docs say false,
contract §7.10). Each firing creates a job whose ``scheduledJobId`` points back and whose
``displayName`` is ``"<displayName> - <run number>"``; ``/scheduledJobs/{id}/jobs`` lists
them. ``completed`` turns true once the schedule has no further occurrence. PUT replaces
(the count of past occurrences is kept), PATCH merges (RFC 7386); both check the etag
(``If-Match`` or the body's) when one is given.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from aislehub.api.deps import Caller, CallerDep, IfMatch, MergePatch
from aislehub.api.models import check_etag
from aislehub.api.paging import paged
from aislehub.api.routes.jobs import JobBody, Jobs, check_job_id, with_progress
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.twins import merge_patch
from aislehub.jobs.service import JobService
from aislehub.jobs.views import job_view, scheduled_job_view
from aislehub.store.jobs import ScheduledJobRow

Json = dict[str, Any]
_ONE = "/scheduledJobs/{scheduledJobId}"

router = APIRouter(tags=["Scheduled jobs"])


async def schedule_id_param(schedule_id: Annotated[str, Path(alias="scheduledJobId")]) -> str:
    return check_job_id(schedule_id, "Scheduled job id")


ScheduleId = Annotated[str, Depends(schedule_id_param)]


@router.get("/scheduledJobs", summary="List scheduled jobs")
async def list_schedules(request: Request, caller: CallerDep, jobs: Jobs) -> Json:
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: jobs.jobs.page_schedules(caller.app_id, offset, limit),
        scheduled_job_view,
    )


@router.get(_ONE, summary="Get a scheduled job")
async def get_schedule(schedule_id: ScheduleId, caller: CallerDep, jobs: Jobs) -> Json:
    return scheduled_job_view(_find(jobs, caller, schedule_id))


@router.put(_ONE, summary="Create or replace a scheduled job")
async def put_schedule(
    schedule_id: ScheduleId,
    body: JobBody,
    caller: CallerDep,
    jobs: Jobs,
    if_match: IfMatch = None,
) -> Json:
    current = jobs.jobs.get_schedule(caller.app_id, schedule_id)
    return scheduled_job_view(_save(jobs, caller, schedule_id, current, body, if_match))


@router.patch(_ONE, summary="Update a scheduled job (JSON merge patch)")
async def patch_schedule(
    schedule_id: ScheduleId,
    patch: MergePatch,
    caller: CallerDep,
    jobs: Jobs,
    if_match: IfMatch = None,
) -> Json:
    current = _find(jobs, caller, schedule_id)
    body = merge_patch(scheduled_job_view(current), patch)
    if "etag" not in patch:
        body.pop("etag", None)
    return scheduled_job_view(_save(jobs, caller, schedule_id, current, body, if_match))


@router.delete(_ONE, status_code=204, summary="Delete a scheduled job")
async def delete_schedule(schedule_id: ScheduleId, caller: CallerDep, jobs: Jobs) -> None:
    if not jobs.jobs.delete_schedule(caller.app_id, schedule_id):
        raise NotFound(f"Scheduled job {schedule_id!r} was not found.")


@router.get(_ONE + "/jobs", summary="List the jobs a scheduled job created")
async def schedule_jobs(
    request: Request, schedule_id: ScheduleId, caller: CallerDep, jobs: Jobs
) -> Json:
    _find(jobs, caller, schedule_id)
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: with_progress(
            jobs, caller, jobs.jobs.page(caller.app_id, offset, limit, schedule_id)
        ),
        lambda pair: job_view(*pair),
    )


def _find(jobs: JobService, caller: Caller, schedule_id: str) -> ScheduledJobRow:
    row = jobs.jobs.get_schedule(caller.app_id, schedule_id)
    if row is None:
        raise NotFound(f"Scheduled job {schedule_id!r} was not found.")
    return row


def _save(
    jobs: JobService,
    caller: Caller,
    schedule_id: str,
    current: ScheduledJobRow | None,
    body: Json,
    if_match: str | None,
) -> ScheduledJobRow:
    etag = body.get("etag")
    if current is not None:
        check_etag(current.etag, if_match, etag if isinstance(etag, str) else None)
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("Invalid scheduled job: enabled must be true or false.")
    if "schedule" not in body:
        raise BadRequest("Invalid scheduled job: schedule is required.")
    return jobs.put_schedule(caller.app_id, schedule_id, body, enabled)
