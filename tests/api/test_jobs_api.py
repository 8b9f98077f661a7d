"""Jobs and scheduled jobs (contract §2.11, §2.12) over FakeLink devices, with the job
service running in the test's event loop."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from aislehub.api import ApiContext
from aislehub.hub.links import OnAck
from aislehub.jobs.operations import Timeouts
from aislehub.jobs.service import JobService
from aislehub.store.metadata import Device
from tests.api.conftest import Api, Env, FakeLink
from tests.api.template_samples import CONTROLLER, controller_template
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

GROUP = f'SELECT * FROM devices WHERE $template = "{CONTROLLER}"'
Json = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class AnsweringLink(FakeLink):
    """Answers every direct method with ``status`` (no answer at all when None)."""

    def __init__(self, env: Env, device_id: str, status: int | None) -> None:
        super().__init__(env.hub, ("app-a", device_id, ""), answer=False)
        self.status = status

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, on_ack: OnAck | None = None
    ) -> None:
        super().publish(topic, payload, qos, on_ack)
        if self.status is not None and topic.startswith("$iothub/methods/POST/"):
            rid = topic.partition("?$rid=")[2]
            self.hub.methods.on_response(self.key, rid, self.status, b'{"done":1}')


@pytest.fixture
async def service(
    env: Env, app_for: Callable[[ApiContext], FastAPI]
) -> AsyncIterator[tuple[JobService, Clock]]:
    ctx = ApiContext(store=env.store, hub=env.hub, telemetry=env.telemetry, metrics=env.metrics)
    clock = Clock()
    jobs = JobService(
        env.store,
        env.hub.templates,
        env.hub,
        timeouts=Timeouts(0, 0.3),
        poll_interval=0.05,
        tick_interval=3600,  # schedules fire when a test calls tick()
    )
    app = app_for(ctx)
    app.state.jobs = jobs
    task = asyncio.create_task(jobs.run(), name="test jobs")
    yield jobs, clock
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    app.state.jobs = None


@pytest.fixture
async def fleet(env: Env, api: Api, service: Any) -> list[str]:
    """d00..d05 of the controller template in group ``controllers``; u1 unassociated."""
    assert (await api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())).is_success
    ids = [f"d{i:02}" for i in range(6)]
    for device_id in ids:
        env.store.put_device(Device("app-a", device_id, device_id, template=CONTROLLER))
    env.store.put_device(Device("app-a", "u1", "U1"))
    group = {"displayName": "Controllers", "filter": GROUP}
    assert (await api.put("/deviceGroups/controllers", json=group)).status_code == 200
    return ids


def command_job(**more: Any) -> Json:
    data = [{"type": "command", "target": CONTROLLER, "path": "reboot", "value": "5"}]
    return {"displayName": "Reboot", "group": "controllers", "data": data} | more


async def finished(api: Api, job_id: str, within: float = 5.0) -> Json:
    async with asyncio.timeout(within):
        while True:
            body: Json = (await api.get(f"/jobs/{job_id}")).json()
            if body["status"] not in ("pending", "running"):
                return body
            await asyncio.sleep(0.02)


async def device_statuses(api: Api, job_id: str) -> dict[str, Json]:
    body = (await api.get(f"/jobs/{job_id}/devices", params={"maxpagesize": "100"})).json()
    return {item["id"]: item for item in body["value"]}


async def test_command_job_runs_on_every_device(env: Env, api: Api, fleet: list[str]) -> None:
    links = [env.attach(d) for d in fleet]
    job = {
        **command_job(description="weekly"),
        "batch": {"type": "number", "value": 4},
        "cancellationThreshold": {"type": "percentage", "value": 50, "batch": True},
    }
    resp = await api.put("/jobs/j1", json=job)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {
        "id": "j1",
        "displayName": "Reboot",
        "description": "weekly",
        "group": "controllers",
        "batch": {"type": "number", "value": 4},
        "cancellationThreshold": {"type": "percentage", "value": 50, "batch": True},
        "data": [{"type": "command", "target": CONTROLLER, "path": "reboot", "value": 5}],
        "progress": {"total": 6, "pending": 6, "completed": 0, "failed": 0},
        "status": "pending",
    }
    done = await finished(api, "j1")
    assert done["status"] == "complete"
    assert done["progress"] == {"total": 6, "pending": 0, "completed": 6, "failed": 0}
    assert done["start"] <= done["end"]
    assert all(link.published[-1][1] == b"5" for link in links)
    statuses = await device_statuses(api, "j1")
    assert statuses == {d: {"id": d, "status": "completed"} for d in fleet}
    history = (await api.get("/devices/d00/commands/reboot")).json()["value"]
    assert history[0]["responseCode"] == 200 and history[0]["request"] == 5


async def test_property_job_completes_for_offline_devices(
    env: Env, api: Api, fleet: list[str]
) -> None:
    link = env.attach("d00")
    data = [
        {
            "type": "PropertyJobData",
            "target": CONTROLLER,
            "path": "thermostat1.targetTemperature",
            "value": "56",
        }
    ]
    resp = await api.put("/jobs/p1", json={"group": "controllers", "data": data})
    assert resp.json()["data"][0] == {
        "type": "property",
        "target": CONTROLLER,
        "path": "thermostat1.targetTemperature",
        "value": 56.0,
    }
    done = await finished(api, "p1")
    assert done["status"] == "complete" and done["progress"]["completed"] == 6
    twin = env.store.get_twin("app-a", "d03")  # offline: stored, sent at reconnect
    assert twin.desired["thermostat1"] == {"__t": "c", "targetTemperature": 56.0}
    assert link.published[-1][0].startswith("$iothub/twin/PATCH/properties/desired/")


async def test_cloud_property_job(env: Env, api: Api, fleet: list[str]) -> None:
    data = [{"type": "cloudProperty", "target": CONTROLLER, "path": "site", "value": "Oslo"}]
    await api.put("/jobs/c1", json={"group": "controllers", "data": data})
    assert (await finished(api, "c1"))["progress"]["completed"] == 6
    assert env.store.cloud.get("app-a", "d05").values == {"site": "Oslo"}


async def test_template_migration_job(env: Env, api: Api, fleet: list[str]) -> None:
    other = "dtmi:aislehub:test:Other;1"
    assert (await api.put(f"/deviceTemplates/{other}", json=controller_template())).is_success
    data = [{"type": "deviceTemplateMigration", "template": other}]
    await api.put("/jobs/m1", json={"group": "controllers", "data": data})
    assert (await finished(api, "m1"))["status"] == "complete"
    assert (await api.get("/devices/d01")).json()["template"] == other


async def test_threshold_cancels_and_rerun_takes_the_failures(
    env: Env, api: Api, fleet: list[str]
) -> None:
    for device_id in fleet[:2]:
        env.hub.links.attach(("app-a", device_id, ""), AnsweringLink(env, device_id, 200))
    env.hub.links.attach(("app-a", "d02", ""), AnsweringLink(env, "d02", 500))
    env.hub.links.attach(("app-a", "d03", ""), AnsweringLink(env, "d03", None))  # no answer
    job = command_job(
        batch={"type": "number", "value": 2},
        cancellationThreshold={"type": "number", "value": 2},
    )
    await api.put("/jobs/t1", json=job)
    done = await finished(api, "t1")
    assert done["status"] == "cancelled"
    assert done["progress"] == {"total": 6, "pending": 2, "completed": 2, "failed": 2}
    statuses = await device_statuses(api, "t1")
    assert statuses["d02"]["status"] == "failed"
    assert "status 500" in statuses["d02"]["failureReason"]
    assert "did not answer" in statuses["d03"]["failureReason"]
    assert {statuses[d]["status"] for d in ("d04", "d05")} == {"cancelled"}

    env.hub.links.attach(("app-a", "d02", ""), AnsweringLink(env, "d02", 200))
    env.hub.links.attach(("app-a", "d03", ""), AnsweringLink(env, "d03", 200))
    resp = await api.put("/jobs/t1/rerun/t1-again")
    assert resp.status_code == 200, resp.text
    rerun = resp.json()
    assert rerun["id"] == "t1-again" and rerun["status"] == "pending"
    assert rerun["progress"]["total"] == 2 and rerun["data"] == done["data"]
    assert (await finished(api, "t1-again"))["progress"]["completed"] == 2
    assert_error(await api.put("/jobs/t1-again/rerun/t1-third"), 409, "Conflict")
    assert_error(await api.put("/jobs/t1/rerun/t1-again"), 409, "Conflict")


async def test_offline_command_devices_fail_with_connection_timeout(
    api: Api, fleet: list[str]
) -> None:
    await api.put("/jobs/o1", json=command_job())
    done = await finished(api, "o1")
    assert done["status"] == "complete" and done["progress"]["failed"] == 6
    reason = (await device_statuses(api, "o1"))["d00"]["failureReason"]
    assert "connection timeout" in reason


async def test_stop_and_resume(env: Env, api: Api, fleet: list[str]) -> None:
    for device_id in fleet:
        env.hub.links.attach(("app-a", device_id, ""), AnsweringLink(env, device_id, None))
    await api.put("/jobs/s1", json=command_job(batch={"type": "number", "value": 1}))
    stop = await api.post("/jobs/s1/stop")
    assert stop.status_code == 204 and stop.content == b""
    stopped = await finished(api, "s1")
    assert stopped["status"] == "stopped"
    await asyncio.sleep(0.5)  # the round in flight ends; nothing more starts
    progress = (await api.get("/jobs/s1")).json()["progress"]
    assert progress["failed"] <= 1 and progress["pending"] >= 5
    assert (await api.post("/jobs/s1/stop")).status_code == 204  # already stopped
    for device_id in fleet:
        env.hub.links.attach(("app-a", device_id, ""), AnsweringLink(env, device_id, 200))
    assert (await api.post("/jobs/s1/resume")).status_code == 204
    done = await finished(api, "s1")
    assert done["status"] == "complete"
    assert done["progress"]["completed"] == 6 - progress["failed"]
    assert_error(await api.post("/jobs/s1/resume"), 409, "Conflict")
    assert_error(await api.post("/jobs/s1/stop"), 409, "Conflict")


async def test_results_as_csv(env: Env, api: Api, fleet: list[str]) -> None:
    await api.put("/jobs/r1", json=command_job())
    await finished(api, "r1")
    resp = await api.get("/jobs/r1/devices", params={"format": "csv"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="job-r1.csv"' in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["deviceId"] for r in rows] == fleet
    assert rows[0]["status"] == "failed" and rows[0]["batch"] == "1"
    assert "connection timeout" in rows[0]["failureReason"]
    assert_error(await api.get("/jobs/r1/devices", params={"format": "xml"}), 400, "BadRequest")


async def test_paging(api: Api, fleet: list[str]) -> None:
    for i in range(3):
        assert (await api.put(f"/jobs/page{i}", json=command_job())).status_code == 200
    first = (await api.get("/jobs", params={"maxpagesize": "2"})).json()
    assert [j["id"] for j in first["value"]] == ["page0", "page1"]
    assert first["nextLink"].startswith("https://contoso.example.net/api/jobs?")
    assert "api-version=2022-07-31" in first["nextLink"]
    second = (await api.client.get(first["nextLink"], headers={"Authorization": api.token})).json()
    assert [j["id"] for j in second["value"]] == ["page2"] and "nextLink" not in second
    devices = (await api.get("/jobs/page0/devices", params={"maxpagesize": "4"})).json()
    assert len(devices["value"]) == 4 and "nextLink" in devices


async def test_refusals(env: Env, api: Api, fleet: list[str]) -> None:
    def job(**data: Any) -> Json:
        item = {"type": "property", "target": CONTROLLER, "path": "site", "value": 1} | data
        return {"group": "controllers", "data": [item]}

    assert_error(await api.put("/jobs/bad id", json=command_job()), 400, "BadRequest")
    assert_error(await api.put("/jobs/x", json={"data": []}), 400, "BadRequest")
    assert_error(await api.put("/jobs/x", json=command_job(group="nope")), 400, "BadRequest")
    assert_error(await api.put("/jobs/x", json=job(type="teleport")), 400, "BadRequest")
    missing = job(target="dtmi:aislehub:test:Missing;1")
    assert_error(await api.put("/jobs/x", json=missing), 400, "BadRequest")
    message = assert_error(await api.put("/jobs/x", json=job()), 422, "ValidationFailed")
    assert "cloudProperty" in message
    read_only = job(path="serialNumber", value="s")
    assert "not writable" in assert_error(
        await api.put("/jobs/x", json=read_only), 422, "ValidationFailed"
    )
    mistyped = job(path="thermostat1.targetTemperature", value="hot")
    assert_error(await api.put("/jobs/x", json=mistyped), 422, "ValidationFailed")
    unknown = job(type="command", path="selfDestruct")
    assert_error(await api.put("/jobs/x", json=unknown), 422, "ValidationFailed")
    mixed = command_job()
    mixed["data"].append({"type": "cloudProperty", "target": CONTROLLER, "path": "site"})
    assert_error(await api.put("/jobs/x", json=mixed), 400, "BadRequest")
    too_much = command_job(batch={"type": "percentage", "value": 150})
    assert_error(await api.put("/jobs/x", json=too_much), 400, "BadRequest")
    assert (await api.put("/jobs/x", json=command_job())).status_code == 200
    assert_error(await api.put("/jobs/x", json=command_job()), 409, "Conflict")
    assert_error(await api.get("/jobs/none"), 404, "NotFound")
    assert_error(await api.get("/jobs/none/devices"), 404, "NotFound")
    assert_error(await api.post("/jobs/none/stop"), 404, "NotFound")
    assert_error(await api.put("/jobs/none/rerun/r"), 404, "NotFound")
    assert_error(await api.get("/jobs", version=None), 400, "InvalidApiVersion")
    assert_error(await api.get("/jobs", token=None), 401, "Unauthorized")


async def test_tenants_are_isolated(env: Env, api: Api, fleet: list[str]) -> None:
    await api.put("/jobs/mine", json=command_job())
    b = env.api_b
    assert (await b.get("/jobs")).json() == {"value": []}
    assert_error(await b.get("/jobs/mine"), 404, "NotFound")
    assert_error(await b.get("/jobs/mine/devices"), 404, "NotFound")
    assert_error(await b.post("/jobs/mine/stop"), 404, "NotFound")
    assert_error(await b.put("/jobs/mine/rerun/theirs"), 404, "NotFound")
    # B cannot aim a job at A's group either: groups are per app.
    assert_error(await b.put("/jobs/theirs", json=command_job()), 400, "BadRequest")


# -- scheduled jobs ----------------------------------------------------------------------------
def scheduled(**more: Any) -> Json:
    schedule = {"start": "2030-01-01T09:00:00Z", "recurrence": "daily"}
    schedule |= more.pop("schedule", {})
    return command_job(displayName="Nightly") | {"schedule": schedule} | more


async def test_scheduled_job_crud(api: Api, fleet: list[str]) -> None:
    resp = await api.put("/scheduledJobs/nightly", json=scheduled())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["enabled"] is True and body["completed"] is False
    assert body["schedule"] == {"start": "2030-01-01T09:00:00Z", "recurrence": "daily"}
    assert body["id"] == "nightly" and body["etag"]
    assert (await api.get("/scheduledJobs/nightly")).json() == body
    patched = await api.patch("/scheduledJobs/nightly", json={"displayName": "Late"})
    assert patched.status_code == 200 and patched.json()["displayName"] == "Late"
    assert patched.json()["etag"] != body["etag"]
    stale = await api.patch(
        "/scheduledJobs/nightly", json={"enabled": False}, headers={"If-Match": body["etag"]}
    )
    assert_error(stale, 412, "PreconditionFailed")
    listed = (await api.get("/scheduledJobs")).json()
    assert [s["id"] for s in listed["value"]] == ["nightly"]
    end = {"end": {"type": "occurrences", "occurrences": 0}}
    assert_error(await api.put("/scheduledJobs/x", json=scheduled(schedule=end)), 400, "BadRequest")
    weird = {"recurrence": "yearly"}
    assert_error(
        await api.put("/scheduledJobs/x", json=scheduled(schedule=weird)), 400, "BadRequest"
    )
    no_schedule = command_job()
    assert_error(await api.put("/scheduledJobs/x", json=no_schedule), 400, "BadRequest")
    assert (await api.delete("/scheduledJobs/nightly")).status_code == 204
    assert_error(await api.get("/scheduledJobs/nightly"), 404, "NotFound")
    assert_error(await api.delete("/scheduledJobs/nightly"), 404, "NotFound")


async def test_schedule_fires_jobs(
    env: Env, api: Api, fleet: list[str], service: tuple[JobService, Clock]
) -> None:
    jobs, clock = service
    jobs.clock = clock
    end = {"end": {"type": "occurrences", "occurrences": 2}}
    await api.put("/scheduledJobs/nightly", json=scheduled(schedule=end))
    assert jobs.tick() == []  # 08:00, due at 09:00
    clock.now += timedelta(hours=1)
    [first] = jobs.tick()
    assert first.definition.display_name == "Nightly - 1"
    assert jobs.tick() == []
    clock.now += timedelta(days=1)
    [second] = jobs.tick()
    assert second.definition.display_name == "Nightly - 2"
    body = (await api.get("/scheduledJobs/nightly")).json()
    assert body["completed"] is True
    runs = (await api.get("/scheduledJobs/nightly/jobs")).json()["value"]
    assert [r["displayName"] for r in runs] == ["Nightly - 1", "Nightly - 2"]
    assert {r["scheduledJobId"] for r in runs} == {"nightly"}
    assert_error(await env.api_b.get("/scheduledJobs/nightly/jobs"), 404, "NotFound")
