"""What a restart does to a job: claims with leases, and the devices left in flight."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aislehub.hub.templates import TemplateCatalog
from aislehub.jobs.service import INTERRUPTED, JobService
from aislehub.store.jobs import Definition, DeviceOutcome, JobRow
from aislehub.store.metadata import App, MetadataStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[JobService]:
    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    store.create_app(App("app", "App", "app", "0ne00000001"))
    yield JobService(store, TemplateCatalog(store))
    store.close()


def make_job(service: JobService, job_id: str, kind: str) -> None:
    data = [{"type": kind, "target": "dtmi:a:b;1", "path": "p", "value": 1}]
    job = JobRow("app", job_id, Definition("g", data), status="running")
    assert service.jobs.create(job, [["d1", "d2", "d3"]])
    in_flight = [DeviceOutcome("d1", "running"), DeviceOutcome("d2", "running")]
    service.jobs.record("app", job_id, [*in_flight, DeviceOutcome("d3", "completed")])


def statuses(service: JobService, job_id: str) -> dict[str, tuple[str, str | None]]:
    rows = service.jobs.devices("app", job_id, 0, 10)
    return {r.device_id: (r.status, r.reason) for r in rows}


def test_commands_in_flight_fail_as_interrupted(service: JobService) -> None:
    make_job(service, "cmd", "command")
    assert service.recover("app", "cmd") == 2
    assert statuses(service, "cmd") == {
        "d1": ("failed", INTERRUPTED),
        "d2": ("failed", INTERRUPTED),
        "d3": ("completed", None),
    }


def test_property_writes_in_flight_run_again(service: JobService) -> None:
    make_job(service, "prop", "property")
    assert service.recover("app", "prop") == 2
    assert statuses(service, "prop")["d1"] == ("pending", None)


def test_one_runner_at_a_time_until_its_lease_runs_out(service: JobService) -> None:
    make_job(service, "j", "property")
    jobs = service.jobs
    assert jobs.claim("app", "j", "a", NOW, 60)
    assert jobs.claim("app", "j", "a", NOW + timedelta(seconds=30), 60)  # renewal
    assert not jobs.claim("app", "j", "b", NOW + timedelta(seconds=60), 60)
    assert jobs.claim("app", "j", "b", NOW + timedelta(seconds=91), 60)  # a's lease ran out
    jobs.release("app", "j", "b")
    assert jobs.claim("app", "j", "c", NOW + timedelta(seconds=92), 60)
    jobs.set_status("app", "j", "stopped", when=("running",))
    assert not jobs.claim("app", "j", "c", NOW + timedelta(seconds=93), 60)  # not active
