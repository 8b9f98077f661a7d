"""``aislehub job …``: jobs on an install's metadata store (CLI side).

The commands write to the store directly, as the device commands do, so they work with
or without a server. A running server picks up a job created or resumed here within a
second (``JobService`` polls the store) and notices a stop before its next round.
Output is the REST API's JSON (``results --csv``: the CSV of ``?format=csv``).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from aislehub.errors import ApiError
from aislehub.hub.templates import TemplateCatalog
from aislehub.install import Install
from aislehub.jobs.service import JobService
from aislehub.jobs.views import device_status_view, job_view, results_csv
from aislehub.settings import load_settings
from aislehub.store.jobs import JobRow
from aislehub.store.metadata import MetadataStore

_ALL = 1_000_000_000


def job_command(data_dir: Path, args: argparse.Namespace) -> int:
    install = Install.load(data_dir)
    store = MetadataStore(load_settings(data_dir).metadata_url)
    jobs = JobService(store, TemplateCatalog(store))
    try:
        return _run(jobs, install.app_id, args)
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _run(jobs: JobService, app_id: str, args: argparse.Namespace) -> int:
    if args.action == "list":
        _out([_view(jobs, job) for job in jobs.jobs.page(app_id, 0, _ALL)])
        return 0
    if not args.target:
        print(
            f"error: job {args.action} needs a {'file' if args.action == 'create' else 'job id'}",
            file=sys.stderr,
        )
        return 1
    if args.action == "create":
        body = json.loads(Path(args.target).read_text())
        job_id = args.id or body.get("id") or str(uuid.uuid4())
        _out(_view(jobs, jobs.create(app_id, job_id, body)))
    elif args.action == "show":
        _out(_view(jobs, jobs.get(app_id, args.target)))
    elif args.action == "stop":
        jobs.stop(app_id, args.target)
    elif args.action == "resume":
        jobs.resume(app_id, args.target)
    elif args.action == "rerun":
        _out(_view(jobs, jobs.rerun(app_id, args.target, args.id or str(uuid.uuid4()))))
    else:
        _results(jobs, app_id, args.target, args.csv)
    return 0


def _results(jobs: JobService, app_id: str, job_id: str, as_csv: bool) -> None:
    rows = jobs.jobs.devices(app_id, jobs.get(app_id, job_id).id, 0, _ALL)
    if as_csv:
        sys.stdout.write(results_csv(rows))
    else:
        _out([device_status_view(r) for r in rows])


def _view(jobs: JobService, job: JobRow) -> dict[str, Any]:
    return job_view(job, jobs.jobs.progress(job.app_id, [job.id])[job.id])


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))
