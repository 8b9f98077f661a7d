"""Alert actions: webhook, e-mail, device command, job, each in the runner's own tasks.

The engine records an alert's actions as ``pending`` in the transaction that opens it and
hands them to :class:`ActionRunner`; ``workers`` tasks take them from a queue, so a slow
or failing action delays only other actions, never ingestion or evaluation. Each attempt's
outcome is stored on the action (``attempts``: time, ok, detail) and the action ends
``succeeded`` or ``failed``. Actions still pending when the process stopped are picked up
again by :meth:`ActionRunner.start` (at least once).

- webhook: POST of a JSON body, signed ``X-Aislehub-Signature: sha256=<HMAC-SHA256 of the
  body under the rule's secret, hex>``; any 2xx is success; other answers and network
  errors are retried with exponential back-off (``base · 2^n``, at most ``attempts``).
- email: one message through the SMTP server of the settings (stdlib ``smtplib`` in a
  worker thread), retried like a webhook.
- command: a direct method on the device (``component*name`` for a component), through
  the hub; a device that is not connected, or answers ≥ 400, is retried like a webhook.
- job: :class:`JobStarter` (the jobs service); one attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import orjson

from aislehub.errors import AislehubError
from aislehub.hub.hub import DeviceHub
from aislehub.store.rows import Json, iso_stamp, utcnow
from aislehub.store.rules import ActionOutcome, Alert, RuleStore

__all__ = ["ActionConfig", "ActionRunner", "JobStarter", "sign"]

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Aislehub-Signature"


class JobStarter(Protocol):
    """What the ``job`` action needs from the jobs service."""

    def start(self, app_id: str, job_body: Mapping[str, Any]) -> str:
        """Create and start a job from ``job_body`` (as ``PUT /api/jobs/{id}``); its id."""
        ...


@dataclass(frozen=True, slots=True)
class ActionConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "aislehub@localhost"
    attempts: int = 5  # per action (webhook, email, command)
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time
    timeout: float = 10.0  # per attempt
    workers: int = 8


class ActionFailed(AislehubError):
    """One attempt failed; the message is recorded as the attempt's detail."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_payload(alert: Alert) -> Json:
    return {
        "id": alert.id,
        "rule": alert.rule_id,
        "device": alert.device_id,
        "severity": alert.severity,
        "state": alert.state,
        "openedAt": iso_stamp(alert.opened_at),
        "detail": alert.detail,
    }


class ActionRunner:
    def __init__(
        self,
        rules: RuleStore,
        hub: DeviceHub | None,
        config: ActionConfig,
        jobs: JobStarter | None = None,
    ) -> None:
        self._rules = rules
        self._hub = hub
        self.config = config
        self.jobs = jobs
        self._queue: asyncio.Queue[tuple[Alert, ActionOutcome]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the workers and queue the actions left pending by the last run."""
        for outcome in await asyncio.to_thread(self._rules.pending_actions):
            alert = await asyncio.to_thread(self._rules.alert_by_id, outcome.alert_id)
            if alert is not None:
                self.submit(alert, [outcome])
        self._tasks = [
            asyncio.create_task(self._work(), name=f"alert-actions-{i}")
            for i in range(self.config.workers)
        ]

    async def close(self) -> None:
        """Stop the workers; actions not finished stay pending for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def submit(self, alert: Alert, outcomes: list[ActionOutcome]) -> None:
        for outcome in outcomes:
            self._queue.put_nowait((alert, outcome))

    async def idle(self) -> None:
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            alert, outcome = await self._queue.get()
            try:
                await self.run(alert, outcome)
            except Exception:  # a bug: the action stays as recorded so far
                log.exception("action %d of alert %s", outcome.idx, alert.id)
            finally:
                self._queue.task_done()

    async def run(self, alert: Alert, outcome: ActionOutcome) -> None:
        attempts = 1 if outcome.type == "job" else self.config.attempts
        delay = self.config.backoff
        for n in range(attempts):
            try:
                detail = await asyncio.wait_for(self._attempt(alert, outcome), self.config.timeout)
                ok = True
            except (
                ActionFailed,
                OSError,
                TimeoutError,
                smtplib.SMTPException,
                AislehubError,
            ) as exc:
                detail, ok = (
                    f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                    False,
                )
            outcome.attempts.append({"at": iso_stamp(utcnow()), "ok": ok, "detail": detail})
            last = ok or n == attempts - 1
            outcome.state = "succeeded" if ok else ("failed" if last else "pending")
            self._rules.record_attempt(outcome)
            if last:
                return
            await asyncio.sleep(delay)
            delay *= 2

    async def _attempt(self, alert: Alert, outcome: ActionOutcome) -> str:
        spec = outcome.spec
        match outcome.type:
            case "webhook":
                return await asyncio.to_thread(self._webhook, alert, spec)
            case "email":
                return await asyncio.to_thread(self._email, alert, spec)
            case "command":
                return await self._command(alert, spec)
            case "job":
                return self._job(alert, spec)
        raise ActionFailed(f"unknown action type {outcome.type!r}")

    def _webhook(self, alert: Alert, spec: Json) -> str:
        body = orjson.dumps({"alert": alert_payload(alert)})
        headers = {"Content-Type": "application/json", **dict(spec.get("headers") or {})}
        if spec.get("secret"):
            headers[SIGNATURE_HEADER] = sign(spec["secret"], body)
        request = urllib.request.Request(spec["url"], body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            exc.close()  # the error carries the open response
            raise ActionFailed(f"HTTP {exc.code}") from None

    def _email(self, alert: Alert, spec: Json) -> str:
        msg = EmailMessage()
        msg["From"] = self.config.smtp_from
        msg["To"] = ", ".join(spec["to"])
        msg["Subject"] = spec.get("subject") or (
            f"[{alert.severity}] {alert.rule_id} on {alert.device_id}"
        )
        msg.set_content(orjson.dumps(alert_payload(alert), option=orjson.OPT_INDENT_2).decode())
        with smtplib.SMTP(
            self.config.smtp_host, self.config.smtp_port, timeout=self.config.timeout
        ) as smtp:
            refused = smtp.send_message(msg)
        if refused:
            raise ActionFailed(f"refused recipients: {', '.join(refused)}")
        return f"sent to {len(spec['to'])} recipient(s)"

    async def _command(self, alert: Alert, spec: Json) -> str:
        if self._hub is None:
            raise ActionFailed("no device hub in this process")
        name = spec["name"] if not spec.get("component") else f"{spec['component']}*{spec['name']}"
        key = (alert.app_id, alert.device_id, "")
        result = await self._hub.invoke_method(  # here, or in the process holding the device
            key, name, spec.get("request"), response_timeout=self.config.timeout
        )
        if result.status >= 400:
            raise ActionFailed(f"device answered {result.status}")
        return f"device answered {result.status}"

    def _job(self, alert: Alert, spec: Json) -> str:
        if self.jobs is None:
            raise ActionFailed("jobs are not available on this server")
        job_id = self.jobs.start(alert.app_id, spec.get("job") or {})
        return f"job {job_id} started"
