"""Which keys a device may sign with, and the checks at CONNECT.

A device signs its SAS token with its own symmetric key (individual attestation) or with
the key derived from its enrollment group: ``HMAC-SHA256(group key, registration id)``
(DPS group enrollment, contract §3.1). Primary and secondary keys are both accepted so
keys can be rolled without downtime.
"""

from __future__ import annotations

import time

from aislehub.errors import AuthenticationFailed
from aislehub.protocol import sas
from aislehub.store.metadata import App, Device, EnrollmentGroup, MetadataStore

# IoT Central creates these two groups in every app; devices without individual
# attestation derive their keys from the first.
DEFAULT_GROUP = "SAS-IoT-Devices"


def group_keys(group: EnrollmentGroup) -> list[str]:
    keys = group.attestation.get("symmetricKey") or {}
    return [k for k in (keys.get("primaryKey"), keys.get("secondaryKey")) if k]


def derived_keys(group: EnrollmentGroup, registration_id: str) -> list[str]:
    return [sas.derive_device_key(k, registration_id) for k in group_keys(group)]


def device_keys(store: MetadataStore, device: Device) -> list[str]:
    """Every key a device may sign with: individual keys, else its group's derived keys."""
    att = device.attestation or {}
    if att.get("type") == "symmetricKey":
        keys = att.get("symmetricKey") or {}
        return [k for k in (keys.get("primaryKey"), keys.get("secondaryKey")) if k]
    group = store.get_group(device.app_id, device.enrollment_group_id or DEFAULT_GROUP)
    if group is None or not group.enabled:
        return []
    return derived_keys(group, device.id)


class CredentialCache:
    """Devices and their keys, so a reconnect storm does not query SQLite per CONNECT.

    An entry is used only while the store's write generation is unchanged (any device or
    group write in this process invalidates everything at once) and for at most ``ttl``
    seconds, which bounds how long a change made by another process (the CLI) goes unseen.
    """

    def __init__(self, store: MetadataStore, ttl: float = 10.0, size: int = 200_000) -> None:
        self._store = store
        self._ttl = ttl
        self._size = size
        self._generation = store.generation
        self._entries: dict[tuple[str, str], tuple[float, Device | None, list[str]]] = {}

    def lookup(self, app_id: str, device_id: str) -> tuple[Device | None, list[str]]:
        now = time.monotonic()
        if self._generation != self._store.generation or len(self._entries) > self._size:
            self._entries.clear()
            self._generation = self._store.generation
        hit = self._entries.get((app_id, device_id))
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1], hit[2]
        device = self._store.get_device(app_id, device_id)
        keys = device_keys(self._store, device) if device is not None else []
        self._entries[(app_id, device_id)] = (now, device, keys)
        return device, keys


def authenticate_hub_device(
    credentials: CredentialCache,
    app: App,
    device_id: str,
    module_id: str | None,
    password: bytes | None,
) -> Device:
    """The device behind a hub CONNECT, or AuthenticationFailed (→ CONNACK 5)."""
    if password is None:
        raise AuthenticationFailed("no SAS token in the CONNECT password")
    device, keys = credentials.lookup(app.id, device_id)
    if device is None:
        raise AuthenticationFailed(f"device {device_id!r} is not registered")
    if not device.enabled:
        raise AuthenticationFailed(f"device {device_id!r} is blocked")
    token = sas.parse_sas_token(_text(password))
    sas.verify_hub_token(token, device_id, module_id, keys, time.time())
    return device


def authenticate_registration(
    store: MetadataStore, app: App, registration_id: str, password: bytes | None
) -> str | None:
    """Check a DPS CONNECT; returns the enrollment group id, or None for an individual one."""
    if password is None:
        raise AuthenticationFailed("no SAS token in the CONNECT password")
    token = sas.parse_sas_token(_text(password))
    now = time.time()
    device = store.get_device(app.id, registration_id)
    if device is not None and (device.attestation or {}).get("type") == "symmetricKey":
        sas.verify_dps_token(token, app.id_scope, registration_id, device_keys(store, device), now)
        return None
    for group in store.list_groups(app.id):
        if group.enabled and group.attestation.get("type") == "symmetricKey":
            keys = derived_keys(group, registration_id)
            try:
                sas.verify_dps_token(token, app.id_scope, registration_id, keys, now)
            except AuthenticationFailed:
                continue
            return group.id
    raise AuthenticationFailed(
        f"registration {registration_id!r}: no enrollment accepts this signature"
    )


def _text(password: bytes) -> str:
    try:
        return password.decode()
    except UnicodeDecodeError as exc:
        raise AuthenticationFailed("SAS token is not UTF-8") from exc
