"""Entities rendered exactly as IoT Central shows them (camelCase, contract §2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aislehub.store.device_groups import DeviceGroup
from aislehub.store.metadata import ApiToken, Device, EnrollmentGroup
from aislehub.store.templates import TemplateRecord, TemplateVersion

Json = dict[str, Any]


def iso_ms(ts: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2021-03-25T15:44:34.955Z``."""
    aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_view(device: Device) -> Json:
    view: Json = {
        "id": device.id,
        "etag": device.etag,
        "displayName": device.display_name,
        "enabled": device.enabled,
        "provisioned": device.provisioned,
        "simulated": device.simulated,
        "organizations": list(device.organizations),
    }
    if device.template is not None:  # absent ⇒ an unassociated device (§2.1)
        view["template"] = device.template
    return view


def group_view(group: EnrollmentGroup) -> Json:
    return {
        "id": group.id,
        "etag": group.etag,
        "displayName": group.display_name,
        "enabled": group.enabled,
        "type": group.type,
        "attestation": group.attestation,
    }


def token_view(token: ApiToken, secret: str | None = None) -> Json:
    """An ``ApiToken``; ``token`` only right after PUT, the one time it is revealed."""
    view: Json = {"id": token.id, "roles": token.roles, "expiry": iso_ms(token.expiry)}
    if secret is not None:
        view["token"] = secret
    return view


def template_view(record: TemplateRecord) -> Json:
    """A ``DeviceTemplate`` (§2.8): the stored document, ``@id`` = the path id, the etag."""
    return {"@id": record.id, **record.document, "etag": record.etag}


def template_version_view(version: TemplateVersion) -> Json:
    return {
        "version": version.version,
        "etag": version.etag,
        "created": iso_ms(version.created_at),
        "document": version.document,
    }


def device_group_view(group: DeviceGroup) -> Json:
    """A ``DeviceGroup`` (§2.9)."""
    view: Json = {
        "id": group.id,
        "etag": group.etag,
        "displayName": group.display_name,
        "filter": group.filter,
        "organizations": list(group.organizations),
    }
    if group.description is not None:
        view["description"] = group.description
    return view
