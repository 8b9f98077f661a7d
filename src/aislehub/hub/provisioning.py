"""The DPS registration flow: register → 202 assigning → poll → assigned.

An operation answers ``assigning`` to the first request and ``assigned`` to the first poll,
which is what the SDK handles best (it waits a fixed 2 s after the 202, contract §3). The
device record is created or updated when the registration is accepted, so the hub accepts
the device's key the moment the device learns its assignment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aislehub.hub.templates import TemplateCatalog
from aislehub.protocol.dps import generate_operation_id
from aislehub.store.metadata import App, Device, MetadataStore, utcnow

# How long a device may take to poll its operation; the SDK polls 2 s after the 202.
OPERATION_TTL_S = 300.0


@dataclass(slots=True)
class Registration:
    app_id: str
    registration_id: str
    device_id: str
    assigned_hub: str
    created: datetime
    updated: datetime
    etag: str
    payload: Any
    status: str  # assigned | disabled | failed
    expires: float = field(default_factory=lambda: time.monotonic() + OPERATION_TTL_S)


class ProvisioningService:
    def __init__(self, store: MetadataStore, templates: TemplateCatalog, assigned_hub: str) -> None:
        self._store = store
        self._templates = templates
        self._hub = assigned_hub
        self._operations: dict[str, Registration] = {}

    def register(
        self, app: App, registration_id: str, group_id: str | None, payload: Any
    ) -> tuple[str, Registration]:
        """Accept a registration; returns the operation id and its (future) result."""
        device = self._store.get_device(app.id, registration_id)
        now = utcnow()
        created = device is None
        if device is None:
            device = Device(
                app.id,
                registration_id,
                display_name=registration_id,
                enrollment_group_id=group_id,
                created_at=now,
            )
        status = "assigned" if device.enabled else "disabled"
        if device.enabled:
            self._provisioned(device, group_id, payload, now, created)
        registration = Registration(
            app.id,
            registration_id,
            device.id,
            self._hub,
            device.created_at,
            now,
            device.etag,
            payload,
            status,
        )
        self._expire(time.monotonic())
        operation_id = generate_operation_id()
        self._operations[operation_id] = registration
        return operation_id, registration

    def _provisioned(
        self, device: Device, group_id: str | None, payload: Any, now: datetime, created: bool
    ) -> None:
        device.provisioned = True
        device.provisioned_at = now
        model_id = payload.get("modelId") if isinstance(payload, dict) else None
        if isinstance(model_id, str):
            device.model_id = model_id
        if group_id is not None and device.attestation is None:
            device.enrollment_group_id = group_id
        assigned = self._assign_template(device)
        self._store.put_device(device)
        if created:  # first seen at DPS: registered by its group enrollment
            detail = {"source": "dps", "template": device.template}
            self._store.add_event(device.app_id, device.id, "registered", detail)
        self._store.add_event(
            device.app_id,
            device.id,
            "provisioned",
            {"enrollmentGroup": group_id, "modelId": device.model_id},
        )
        if assigned:
            detail = {"template": device.template, "modelId": device.model_id, "source": "dps"}
            self._store.add_event(device.app_id, device.id, "templateAssigned", detail)

    def _assign_template(self, device: Device) -> bool:
        """Auto-assignment (DESIGN §1): the template of the announced model, if any."""
        if device.template is not None or device.model_id is None:
            return False
        device.template = self._templates.match(device.app_id, device.model_id)
        return device.template is not None

    def poll(self, app: App, registration_id: str, operation_id: str) -> Registration | None:
        registration = self._operations.get(operation_id)
        if registration is None or registration.app_id != app.id:
            return None
        if registration.registration_id != registration_id:
            return None
        return registration

    def _expire(self, now: float) -> None:
        """Drop operations nobody polled in time, so abandoned registrations cannot pile up."""
        while self._operations:  # insertion order is expiry order: stop at the first live one
            oldest = next(iter(self._operations))
            if self._operations[oldest].expires > now:
                break
            del self._operations[oldest]
