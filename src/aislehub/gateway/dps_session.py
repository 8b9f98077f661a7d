"""The DPS side of a connection: register and poll requests from one registration id."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aislehub.errors import TopicNotAllowed
from aislehub.hub.hub import DeviceHub
from aislehub.hub.provisioning import Registration
from aislehub.protocol import dps
from aislehub.protocol.mqtt import Publish
from aislehub.store.metadata import App, utcnow

Send = Callable[[str, bytes, int], None]

# Seconds the device waits between polls; the SDK waits 2 s after the 202 regardless.
RETRY_AFTER_S = 1
ERROR_NOT_FOUND = 404001
ERROR_DISABLED = 401003


class DpsHandler:
    def __init__(
        self, hub: DeviceHub, app: App, registration_id: str, group_id: str | None, send: Send
    ) -> None:
        self._hub = hub
        self._app = app
        self._registration_id = registration_id
        self._group_id = group_id
        self._send = send

    def on_publish(self, publish: Publish) -> None:
        match dps.parse_dps_topic(publish.topic):
            case dps.DpsRegister(rid=rid):
                self._register(rid, publish.payload)
            case dps.DpsPoll(rid=rid, operation_id=operation_id):
                self._poll(rid, operation_id)
            case _:  # pragma: no cover - parse_dps_topic raises for anything else
                raise TopicNotAllowed(f"topic {publish.topic!r} is not a DPS request")

    def _register(self, rid: str, body: bytes) -> None:
        try:
            request = dps.parse_register_body(body, self._registration_id)
        except dps.BadDpsRequest as exc:
            self._error(exc.status, rid, exc.error_code, str(exc))
            return
        operation_id, _ = self._hub.provisioning.register(
            self._app, request.registration_id, self._group_id, request.payload
        )
        self._hub.metrics.inc("dps_registrations_total")
        self._reply(202, rid, dps.assigning_body(operation_id), retry_after=RETRY_AFTER_S)

    def _poll(self, rid: str, operation_id: str) -> None:
        registration = self._hub.provisioning.poll(self._app, self._registration_id, operation_id)
        if registration is None:
            self._error(404, rid, ERROR_NOT_FOUND, f"operation {operation_id!r} is unknown")
            return
        self._reply(200, rid, _result_body(operation_id, registration))

    def _error(self, status: int, rid: str, code: int, message: str) -> None:
        body = dps.error_body(code, message, str(uuid.uuid4()), utcnow())
        self._reply(status, rid, body)

    def _reply(self, status: int, rid: str, body: bytes, retry_after: int | None = None) -> None:
        self._send(dps.response_topic(status, rid, retry_after), body, 0)


def _result_body(operation_id: str, r: Registration) -> bytes:
    if r.status != "assigned":
        return dps.failed_body(
            operation_id,
            r.registration_id,
            ERROR_DISABLED,
            f"device {r.device_id!r} is disabled",
            r.created,
            r.updated,
        )
    state = dps.RegistrationState(
        r.registration_id, r.device_id, r.assigned_hub, r.created, r.updated, r.etag, r.payload
    )
    return dps.assigned_body(operation_id, state)
