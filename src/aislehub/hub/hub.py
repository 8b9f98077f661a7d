"""The device hub: the device-facing domain that the gateway and the API both talk to.

It owns device-bound traffic (twin patches, method calls, C2D) and routes it to the device's
current link; it answers device requests (twin GET, reported PATCH, method responses).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import orjson

from aislehub.errors import NotFound
from aislehub.hub import twins
from aislehub.hub.links import DeviceLink, Key, LinkRegistry
from aislehub.hub.methods import MethodInvoker
from aislehub.hub.provisioning import ProvisioningService
from aislehub.hub.sessions import SessionStore
from aislehub.metrics import Metrics
from aislehub.protocol import iothub
from aislehub.store.metadata import App, Json, MetadataStore, Twin, utcnow

log = logging.getLogger(__name__)

C2D_DEFAULT_TTL = timedelta(hours=1)  # IoT Hub's default message time-to-live


class DeviceHub:
    def __init__(self, store: MetadataStore, metrics: Metrics, assigned_hub: str) -> None:
        self.store = store
        self.metrics = metrics
        self.links = LinkRegistry()
        self.methods = MethodInvoker(self.links, metrics)
        self.provisioning = ProvisioningService(store, assigned_hub)
        self.sessions = SessionStore()
        self._c2d_inflight: dict[Key, set[int]] = {}

    # -- apps --------------------------------------------------------------------------
    def app_for_host(self, host: str) -> App | None:
        """The app a hub host name designates: by first DNS label, else the install's first."""
        apps = self.store.list_apps()
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
        self.store.add_event(key[0], key[1], "connected", {"module": key[2]})
        self.deliver_pending_c2d(key)

    def disconnected(self, key: Key, link: DeviceLink, reason: str) -> None:
        if self.links.get(key) is link:
            self.links.detach(key, link)
            self.store.add_event(
                key[0], key[1], "disconnected", {"module": key[2], "reason": reason}
            )

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
        if link is not None:
            body = orjson.dumps({**patch, "$version": twin.desired_version})
            link.publish(iothub.desired_patch_topic(twin.desired_version), body, qos=0)
        return twin

    # -- cloud-to-device messages ------------------------------------------------------
    def send_c2d(
        self, key: Key, payload: bytes, properties: dict[str, str], ttl: timedelta = C2D_DEFAULT_TTL
    ) -> int:
        if self.store.get_device(key[0], key[1]) is None:
            raise NotFound(f"Device {key[1]!r} was not found.")
        seq = self.store.enqueue_c2d(key[0], key[1], properties, payload, utcnow() + ttl)
        self.deliver_pending_c2d(key)
        return seq

    def deliver_pending_c2d(self, key: Key) -> None:
        link = self.links.get(key)
        if link is None or key[2]:
            return
        inflight = self._c2d_inflight.setdefault(key, set())
        for msg in self.store.pending_c2d(key[0], key[1], utcnow()):
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
