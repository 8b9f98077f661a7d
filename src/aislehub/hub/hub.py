"""The device hub: the device-facing domain that the gateway and the API both talk to.

It owns device-bound traffic (twin patches, method calls, C2D) and routes it to the device's
current link; it answers device requests (twin GET, reported PATCH, method responses).
When other processes hold devices too (``remote`` set: :mod:`aislehub.hub.routing`), an
operation on a device without a link here is handed to them; otherwise it stays in-process.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from aislehub.errors import NotFound
from aislehub.hub import twins
from aislehub.hub.auth import CredentialCache
from aislehub.hub.links import DeviceLink, Key, LinkRegistry
from aislehub.hub.methods import MethodInvoker, MethodResult
from aislehub.hub.provisioning import ProvisioningService
from aislehub.hub.routing import Presence, RemoteDevices
from aislehub.hub.sessions import SessionStore
from aislehub.hub.templates import TemplateCatalog
from aislehub.metrics import Metrics
from aislehub.protocol import iothub
from aislehub.store.metadata import App, Device, Json, MetadataStore, Twin, utcnow
from aislehub.store.rows import iso_stamp

log = logging.getLogger(__name__)

C2D_DEFAULT_TTL = timedelta(hours=1)  # IoT Hub's default message time-to-live


class DeviceHub:
    def __init__(self, store: MetadataStore, metrics: Metrics, assigned_hub: str) -> None:
        self.store = store
        self.metrics = metrics
        self.links = LinkRegistry()
        self.methods = MethodInvoker(self.links, metrics)
        self.templates = TemplateCatalog(store)
        self.provisioning = ProvisioningService(store, self.templates, assigned_hub)
        self.sessions = SessionStore()
        self.credentials = CredentialCache(store)
        self._c2d_inflight: dict[Key, set[int]] = {}
        # Devices that may have C2D messages waiting: the only ones a CONNECT queries for.
        self._c2d_waiting = {(a, d, "") for a, d in store.devices_with_pending_c2d()}
        self._events: list[tuple[str, str, str, Json, datetime]] = []
        self._apps: tuple[int, list[App]] = (-1, [])
        self.remote: RemoteDevices | None = None  # the other processes, when there are any

    # -- apps --------------------------------------------------------------------------
    def app_for_host(self, host: str) -> App | None:
        """The app a hub host name designates: by first DNS label, else the install's first."""
        if self._apps[0] != self.store.generation:
            self._apps = (self.store.generation, self.store.list_apps())
        apps = self._apps[1]
        label = host.split(".", 1)[0].lower()
        return next((a for a in apps if a.subdomain == label), apps[0] if apps else None)

    def app_for_scope(self, id_scope: str) -> App | None:
        return self.store.app_by_scope(id_scope)

    # -- connectivity ------------------------------------------------------------------
    def connected(self, key: Key, link: DeviceLink, resumed: bool) -> None:
        """``resumed``: the link resent the previous session's in-flight messages."""
        if not resumed:
            self._c2d_inflight.pop(key, None)
        self.links.attach(key, link)
        if self.remote is not None:
            self.remote.announce_connected(key)
        self.record_event(key, "connected", {"module": key[2]})
        self.deliver_pending_c2d(key)

    def disconnected(self, key: Key, link: DeviceLink, reason: str) -> None:
        if self.links.get(key) is link:
            self.links.detach(key, link)
            active = datetime.fromtimestamp(link.last_activity(), UTC)
            detail = {"module": key[2], "reason": reason, "lastActivity": iso_stamp(active)}
            self.record_event(key, "disconnected", detail)

    def disconnect_device(self, app_id: str, device_id: str, reason: str) -> None:
        """Close the device's links (its own and its modules'), here and in other processes."""
        for link in self.links.for_device(app_id, device_id):
            link.close(reason)
        if self.remote is not None:
            self.remote.close_device(app_id, device_id, reason)

    async def presence(self, app_id: str, device_id: str) -> Presence:
        """Whether the device (and which of its modules) is connected, in any process."""
        here = Presence.of(self.links, app_id, device_id)
        if self.remote is None:
            return here
        return here.merge(await self.remote.presence(app_id, device_id))

    def enforce_blocks(self) -> int:
        """Close the links of devices blocked or deleted (by any process); how many closed.

        The API closes them at once itself; this catches other processes' writes (the CLI)
        within :meth:`run_metadata_watch`'s interval.
        """
        states = self.store.device_states()
        closed = 0
        for key in self.links.attached():
            enabled = states.get((key[0], key[1]))
            link = self.links.get(key)
            if not enabled and link is not None:
                link.close("device deleted" if enabled is None else "device blocked")
                closed += 1
        return closed

    async def run_metadata_watch(self, interval: float = 1.0) -> None:
        """Notice writes by other processes: stale caches cleared, blocks enforced."""
        last = await asyncio.to_thread(self.store.catalog_fingerprint)
        while True:
            await asyncio.sleep(interval)
            current = await asyncio.to_thread(self.store.catalog_fingerprint)
            if current != last:
                last = current
                self.store.generation += 1  # credential cache and typing catalog refresh
                await asyncio.to_thread(self.enforce_blocks)

    def announce_model(self, device: Device, model_id: str | None) -> None:
        """A hub CONNECT named a PnP model (``model-id``): note it, and give an unassociated
        device the matching template. Writes only when something changes: this runs on
        every CONNECT, and ``device`` is the credential cache's copy, updated in place."""
        if not model_id or (device.model_id == model_id and device.template is not None):
            return
        template = None if device.template else self.templates.match(device.app_id, model_id)
        if device.model_id == model_id and template is None:
            return
        assigned = self.store.templates.note_model(device.app_id, device.id, model_id, template)
        device.model_id = model_id
        if assigned:
            self.store.generation += 1  # typed ingest: the catalog must see it now
            device.template = template
            detail = {"template": template, "modelId": model_id, "source": "connect"}
            self.record_event((device.app_id, device.id, ""), "templateAssigned", detail)

    def record_event(self, key: Key, kind: str, detail: Json) -> None:
        """Queue a connectivity event; ``flush_events`` stores the queue in one transaction."""
        self._events.append((key[0], key[1], kind, detail, utcnow()))

    def flush_events(self) -> None:
        events, self._events = self._events, []
        self.store.add_events(events)

    async def run_event_writer(self, interval: float = 0.5) -> None:
        """Store queued events every ``interval`` s (a reconnect storm costs one write)."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.flush_events()
        finally:
            self.flush_events()

    # -- direct methods ----------------------------------------------------------------
    async def invoke_method(
        self,
        key: Key,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float = 0.0,
    ) -> MethodResult:
        """Run a direct method on the device's link, here or in the process holding it.

        Raises NotFound (not connected within ``connect_timeout``) or GatewayTimeout."""
        if self.remote is None or self.links.get(key) is not None:
            return await self.methods.invoke(
                key,
                name,
                payload,
                response_timeout=response_timeout,
                connect_timeout=connect_timeout,
            )
        # Every process (this one too) waits up to connect_timeout for the device.
        return await self.remote.invoke(key, name, payload, response_timeout, connect_timeout)

    # -- twins -------------------------------------------------------------------------
    def twin(self, key: Key) -> Twin:
        return self.store.get_twin(*key)

    def patch_reported(self, key: Key, patch: Json) -> int:
        twin = twins.apply_reported(self.store.get_twin(*key), patch, utcnow())
        self.store.save_twin(*key, twin)
        self.metrics.inc("twin_updates_total")
        return twin.reported_version

    def patch_desired(self, key: Key, patch: Json) -> Twin:
        """Merge a desired patch and push it, with its ``$version``, to the device if online."""
        if self.store.get_device(key[0], key[1]) is None:
            raise NotFound(f"Device {key[1]!r} was not found.")
        twin = twins.apply_desired(self.store.get_twin(*key), patch, utcnow())
        self.store.save_twin(*key, twin)
        link = self.links.get(key)
        body = orjson.dumps({**patch, "$version": twin.desired_version})
        if link is not None:
            link.publish(iothub.desired_patch_topic(twin.desired_version), body, qos=0)
        elif self.remote is not None:
            self.remote.push_desired(key, twin.desired_version, body)
        return twin

    # -- cloud-to-device messages ------------------------------------------------------
    def send_c2d(
        self, key: Key, payload: bytes, properties: dict[str, str], ttl: timedelta = C2D_DEFAULT_TTL
    ) -> int:
        if self.store.get_device(key[0], key[1]) is None:
            raise NotFound(f"Device {key[1]!r} was not found.")
        seq = self.store.enqueue_c2d(key[0], key[1], properties, payload, utcnow() + ttl)
        self._c2d_waiting.add(key)
        self.deliver_pending_c2d(key)
        if self.remote is not None:  # every process notes it: the device may connect there
            self.remote.notify_c2d(key)
        return seq

    def note_c2d_waiting(self, key: Key) -> None:
        """Another process queued C2D messages for ``key``: deliver them if it is here."""
        self._c2d_waiting.add(key)
        self.deliver_pending_c2d(key)

    def deliver_pending_c2d(self, key: Key) -> None:
        link = self.links.get(key)
        if link is None or key[2] or key not in self._c2d_waiting:
            return
        pending = self.store.pending_c2d(key[0], key[1], utcnow())
        if not pending:
            self._c2d_waiting.discard(key)
            return
        inflight = self._c2d_inflight.setdefault(key, set())
        for msg in pending:
            if msg.seq in inflight:
                continue
            inflight.add(msg.seq)
            props = {"$.mid": str(msg.seq), **msg.properties}
            topic = iothub.c2d_topic(key[1], props)
            link.publish(topic, msg.payload, qos=1, on_ack=self._completer(key, msg.seq))

    def _completer(self, key: Key, seq: int) -> Any:
        def complete() -> None:
            self._c2d_inflight.get(key, set()).discard(seq)
            self.store.complete_c2d(seq)
            self.metrics.inc("c2d_sent_total")

        return complete
