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


def authenticate_hub_device(
    store: MetadataStore, app: App, device_id: str, module_id: str | None, password: bytes | None
) -> Device:
    """The device behind a hub CONNECT, or AuthenticationFailed (→ CONNACK 5)."""
    if password is None:
        raise AuthenticationFailed("no SAS token in the CONNECT password")
    device = store.get_device(app.id, device_id)
    if device is None:
        raise AuthenticationFailed(f"device {device_id!r} is not registered")
    if not device.enabled:
        raise AuthenticationFailed(f"device {device_id!r} is blocked")
    token = sas.parse_sas_token(_text(password))
    sas.verify_hub_token(token, device_id, module_id, device_keys(store, device), time.time())
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
