"""``/jobs`` (contract §2.11): create and run, list, per-device status, stop, resume, rerun.

``PUT /jobs/{id}`` checks the job against its group and template (400 for a missing
group or template, 422 for a path or value the template refuses), fixes its devices
and answers 200 with the job, ``status: pending``; the server's job service runs it.
A job cannot be replaced: a second PUT of the same id is a 409. ``/stop`` and
``/resume`` answer 204 (idempotent on a job already stopped or running; 409 on an ended
one). ``PUT /jobs/{id}/rerun/{rerunId}`` (also accepted as POST) answers 200 with the new
job over the devices that failed; 409 while the job still runs or if none failed.

Per-device results: ``GET /jobs/{id}/devices`` is IoT Central's paged
``JobDeviceStatus`` list (a failed device carries our ``failureReason``);
``GET /jobs/{id}/devices?format=csv`` is every device at once as CSV (ours).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from aislehub.api.deps import Caller, CallerDep
from aislehub.api.paging import paged
from aislehub.errors import BadRequest
from aislehub.jobs.service import JobService
from aislehub.jobs.views import device_status_view, job_view, results_csv
from aislehub.store.jobs import JobRow

Json = dict[str, Any]
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,255}")  # the spec's jobId (§1.10)
_ONE = "/jobs/{jobId}"

router = APIRouter(tags=["Jobs"])


def check_job_id(job_id: str, what: str = "Job id") -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise BadRequest(f"{what} {job_id!r} is invalid: use 1 to 255 letters, digits, '_' or '-'.")
    return job_id


async def job_id_param(job_id: Annotated[str, Path(alias="jobId")]) -> str:
    return check_job_id(job_id)


def job_service(request: Request, caller: CallerDep) -> JobService:
    """The server's job service (``runtime`` sets ``app.state.jobs``); an API built
    without one (tests of other routes) gets a service that stores jobs but runs none."""
    service: JobService | None = getattr(request.app.state, "jobs", None)
    if service is None or service.store is not caller.ctx.store:
        service = JobService(caller.ctx.store, caller.ctx.hub.templates, caller.ctx.hub)
        request.app.state.jobs = service
    return service


JobId = Annotated[str, Depends(job_id_param)]
Jobs = Annotated[JobService, Depends(job_service)]
JobBody = Annotated[dict[str, Any], Body()]


@router.get("/jobs", summary="List jobs")
async def list_jobs(request: Request, caller: CallerDep, jobs: Jobs) -> Json:
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: with_progress(
            jobs, caller, jobs.jobs.page(caller.app_id, offset, limit)
        ),
        lambda pair: job_view(*pair),
    )


@router.get(_ONE, summary="Get a job")
async def get_job(job_id: JobId, caller: CallerDep, jobs: Jobs) -> Json:
    return render(jobs, caller, jobs.get(caller.app_id, job_id))


@router.put(_ONE, summary="Create and run a job")
async def put_job(job_id: JobId, body: JobBody, caller: CallerDep, jobs: Jobs) -> Json:
    return render(jobs, caller, jobs.create(caller.app_id, job_id, body))


@router.get(_ONE + "/devices", summary="Per-device status of a job (format=csv: all, as CSV)")
async def job_devices(
    request: Request,
    job_id: JobId,
    caller: CallerDep,
    jobs: Jobs,
    format: Annotated[str | None, Query(description="csv: every device as CSV")] = None,
) -> Any:
    job = jobs.get(caller.app_id, job_id)
    store = jobs.jobs
    if format == "csv":
        rows = store.devices(caller.app_id, job.id, 0, 1_000_000_000)
        headers = {"Content-Disposition": f'attachment; filename="job-{job.id}.csv"'}
        return Response(results_csv(rows), media_type="text/csv", headers=headers)
    if format is not None:
        raise BadRequest(f"format {format!r} is not supported; use format=csv or leave it out.")
    return paged(
        request,
        caller.ctx.public_base_url,
        lambda offset, limit: store.devices(caller.app_id, job.id, offset, limit),
        device_status_view,
    )


@router.post(_ONE + "/stop", status_code=204, summary="Stop a running job")
async def stop_job(job_id: JobId, caller: CallerDep, jobs: Jobs) -> None:
    jobs.stop(caller.app_id, job_id)


@router.post(_ONE + "/resume", status_code=204, summary="Resume a stopped job")
async def resume_job(job_id: JobId, caller: CallerDep, jobs: Jobs) -> None:
    jobs.resume(caller.app_id, job_id)


@router.put(_ONE + "/rerun/{rerunId}", summary="Rerun a job on its failed devices")
@router.post(_ONE + "/rerun/{rerunId}", include_in_schema=False)
async def rerun_job(
    job_id: JobId,
    rerun_id: Annotated[str, Path(alias="rerunId")],
    caller: CallerDep,
    jobs: Jobs,
) -> Json:
    check_job_id(rerun_id, "Rerun id")
    return render(jobs, caller, jobs.rerun(caller.app_id, job_id, rerun_id))


def with_progress(jobs: JobService, caller: Caller, rows: list[JobRow]) -> list[Any]:
    counts = jobs.jobs.progress(caller.app_id, [r.id for r in rows])
    return [(row, counts[row.id]) for row in rows]


def render(jobs: JobService, caller: Caller, job: JobRow) -> Json:
    return job_view(job, jobs.jobs.progress(caller.app_id, [job.id])[job.id])
