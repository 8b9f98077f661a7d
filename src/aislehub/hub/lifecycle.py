"""Device lifecycle events: what changed between two versions of a device record.

IoT Central reports lifecycle changes as events (its data export's ``deviceLifecycle``
source: registered, provisioned, enabled, disabled, deleted, displayNameChanged, and the
template change) beside connectivity (connected, disconnected). We store ours in the
same ``device_events`` table, so rules, exports and the API read one history. Names are
IoT Central's, except ``templateAssigned`` (which also records dissociation, template
None) where it says ``deviceTemplateChanged``.
"""

from __future__ import annotations

from aislehub.store.metadata import Device, Json

__all__ = ["LIFECYCLE_KINDS", "device_changes"]

LIFECYCLE_KINDS = (
    "registered",
    "provisioned",
    "enabled",
    "disabled",
    "displayNameChanged",
    "templateAssigned",
    "deleted",
)


def device_changes(
    before: Device | None, after: Device | None, source: str
) -> list[tuple[str, Json]]:
    """The lifecycle events (kind, detail) that turn ``before`` into ``after``.

    ``None`` is "no such device": None → device is a registration, device → None a
    deletion. ``source`` says who acted (``api``, ``cli``, ``dps``, ``connect``).
    """
    if after is None:
        return [] if before is None else [("deleted", {"source": source})]
    if before is None:
        events: list[tuple[str, Json]] = [
            ("registered", {"source": source, "template": after.template})
        ]
        if not after.enabled:
            events.append(("disabled", {"source": source}))
        return events
    events = []
    if before.enabled != after.enabled:
        events.append(("enabled" if after.enabled else "disabled", {"source": source}))
    if before.display_name != after.display_name:
        renamed: Json = {"displayName": after.display_name, "previous": before.display_name}
        events.append(("displayNameChanged", renamed | {"source": source}))
    if before.template != after.template:
        moved: Json = {"template": after.template, "previous": before.template}
        events.append(("templateAssigned", moved | {"source": source}))
    return events
