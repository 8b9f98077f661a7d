"""Jobs rendered as IoT Central shows them (contract §2.11, §2.12), for the API and the CLI."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable

from aislehub.jobs.model import Json, definition_view
from aislehub.store.jobs import COMPLETED, FAILED, DeviceOutcome, JobRow, ScheduledJobRow
from aislehub.store.rows import iso_stamp

CSV_COLUMNS = ("deviceId", "status", "batch", "updated", "failureReason")


def job_view(job: JobRow, counts: Counter[str]) -> Json:
    """A ``Job``. ``progress.pending`` counts every device not yet completed or failed
    (pending, in flight, or cancelled), so ``total = pending + completed + failed``."""
    view: Json = {"id": job.id}
    if job.scheduled_job_id is not None:
        view["scheduledJobId"] = job.scheduled_job_id
    view |= definition_view(job.definition)
    if job.started_at is not None:
        view["start"] = iso_stamp(job.started_at)
    if job.ended_at is not None:
        view["end"] = iso_stamp(job.ended_at)
    total = sum(counts.values())
    view["progress"] = {
        "total": total,
        "pending": total - counts[COMPLETED] - counts[FAILED],
        "completed": counts[COMPLETED],
        "failed": counts[FAILED],
    }
    view["status"] = job.status
    return view


def device_status_view(outcome: DeviceOutcome) -> Json:
    """A ``JobDeviceStatus``; a failed device also says why (``failureReason``, ours)."""
    view: Json = {"id": outcome.device_id, "status": outcome.status}
    if outcome.reason is not None and outcome.status == FAILED:
        view["failureReason"] = outcome.reason
    return view


def scheduled_job_view(row: ScheduledJobRow) -> Json:
    view: Json = {"id": row.id, "etag": row.etag}
    view |= definition_view(row.definition)
    view["schedule"] = row.schedule
    view["enabled"] = row.enabled
    view["completed"] = row.completed
    return view


def results_csv(outcomes: Iterable[DeviceOutcome]) -> str:
    """Per-device results as CSV (RFC 4180, a header row, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for o in outcomes:
        updated = iso_stamp(o.updated_at) if o.updated_at else ""
        writer.writerow((o.device_id, o.status, o.batch + 1, updated, o.reason or ""))
    return out.getvalue()
