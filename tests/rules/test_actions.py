"""Alert actions against real local servers: retries with back-off, outcomes recorded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aislehub.rules.actions import ActionConfig, ActionRunner, sign
from aislehub.store.metadata import MetadataStore
from aislehub.store.rows import utcnow
from aislehub.store.rules import Opening, RuleStore


@pytest.fixture
def flaky_hook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """Answers 503 twice, then 204."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(503 if len(got) <= 2 else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", got
    httpd.shutdown()
    httpd.server_close()


def open_alert(
    rules: RuleStore, actions: list[tuple[str, dict[str, Any]]], device: str = "d1"
) -> Any:
    opening = Opening("app1", "r", device, "warning", utcnow(), {}, actions)
    [(alert, outcomes)] = rules.checkpoint("rules", 0, b"", [opening])
    return alert, outcomes


def test_webhook_retries_with_backoff_then_succeeds(
    store: MetadataStore, flaky_hook: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = flaky_hook
    rules = RuleStore(store.engine)
    alert, _ = open_alert(rules, [("webhook", {"type": "webhook", "url": url, "secret": "k"})])
    runner = ActionRunner(rules, None, ActionConfig(backoff=0.05, attempts=4))

    async def run() -> None:
        await runner.start()  # takes up the pending action recorded with the alert
        await asyncio.wait_for(runner.idle(), 10)
        await runner.close()

    asyncio.run(run())
    [recorded] = rules.alert("app1", alert.id).actions  # type: ignore[union-attr]
    assert recorded.state == "succeeded"
    assert [a["ok"] for a in recorded.attempts] == [False, False, True]
    assert recorded.attempts[0]["detail"] == "ActionFailed: HTTP 503"
    headers, body = got[-1]
    assert headers["X-Aislehub-Signature"] == sign("k", body)


def test_job_without_a_job_service_fails_once_and_says_why(store: MetadataStore) -> None:
    rules = RuleStore(store.engine)
    alert, outcomes = open_alert(rules, [("job", {"type": "job", "job": {}})])
    runner = ActionRunner(rules, None, ActionConfig(backoff=0.01))
    asyncio.run(runner.run(alert, outcomes[0]))
    [recorded] = rules.alert("app1", alert.id).actions  # type: ignore[union-attr]
    assert recorded.state == "failed" and len(recorded.attempts) == 1
    assert "jobs are not available" in recorded.attempts[0]["detail"]


def test_second_opening_while_active_is_skipped_and_pending_actions_resume(
    store: MetadataStore,
) -> None:
    rules = RuleStore(store.engine)
    open_alert(rules, [("email", {"type": "email", "to": ["a@b.c"]})])
    again = Opening("app1", "r", "d1", "warning", utcnow(), {}, [])
    assert rules.checkpoint("rules", 1, b"x", [again]) == []
    assert rules.load_checkpoint("rules") == (1, b"x")
    assert [o.type for o in rules.pending_actions()] == ["email"]


def test_job_action_starts_a_job_through_the_job_service(store: MetadataStore) -> None:
    from aislehub.hub.templates import TemplateCatalog
    from aislehub.jobs.service import JobService
    from aislehub.store.device_groups import DeviceGroup
    from tests.api.template_samples import CONTROLLER, controller_template

    store.groups.put(DeviceGroup("app1", "coolers", "Coolers", "SELECT * FROM devices"))
    templates = TemplateCatalog(store)
    templates.publish("app1", CONTROLLER, controller_template())
    jobs = JobService(store, templates)
    rules = RuleStore(store.engine)
    item = {"type": "cloudProperty", "target": CONTROLLER, "path": "site", "value": "x"}
    body = {"group": "coolers", "data": [item]}
    alert, outcomes = open_alert(rules, [("job", {"type": "job", "job": body})])
    bad_job = [("job", {"type": "job", "job": {"group": "coolers"}})]
    bad_alert, bad = open_alert(rules, bad_job, "d2")
    runner = ActionRunner(rules, None, ActionConfig(), jobs)
    asyncio.run(runner.run(alert, outcomes[0]))
    asyncio.run(runner.run(bad_alert, bad[0]))
    [done] = rules.alert("app1", alert.id).actions  # type: ignore[union-attr]
    assert done.state == "succeeded", done.attempts
    assert done.attempts[0]["detail"].startswith("job ")
    [failed] = rules.alert("app1", bad_alert.id).actions  # type: ignore[union-attr]
    assert failed.state == "failed" and "data" in failed.attempts[0]["detail"]
