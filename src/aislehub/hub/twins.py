"""Device twins: versioned desired and reported documents, merged as JSON Merge Patch.

IoT Hub semantics: a PATCH merges recursively, ``null`` removes a key, and each side keeps
its own ``$version`` that grows by one per accepted patch. Metadata keeps the last update
time of every top-level property (and of each property inside a PnP component), and on the
desired side the ``$version`` that last wrote it: a device acknowledges a writable property
with ``av`` = the version of the patch that carried it (PnP convention, contract §2.5), so
acknowledgement tracking compares with that version, not with the twin's latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aislehub.store.metadata import Json, Twin
from aislehub.store.rows import iso_stamp


def merge_patch(target: Json, patch: Mapping[str, Any]) -> Json:
    """RFC 7386 merge of ``patch`` into a copy of ``target``."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


def _touched_paths(patch: Mapping[str, Any]) -> list[str]:
    """Top-level keys, and ``component/prop`` for keys inside a PnP component (``__t: c``)."""
    paths: list[str] = []
    for key, value in patch.items():
        if isinstance(value, Mapping) and value.get("__t") == "c":
            paths.extend(f"{key}/{inner}" for inner in value if inner != "__t")
        else:
            paths.append(key)
    return paths


def _stamp(updated: dict[str, str], patch: Mapping[str, Any], now: datetime) -> dict[str, str]:
    return {**updated, **dict.fromkeys(_touched_paths(patch), iso_stamp(now))}


def apply_reported(twin: Twin, patch: Mapping[str, Any], now: datetime) -> Twin:
    return Twin(
        desired=twin.desired,
        desired_version=twin.desired_version,
        desired_updated=twin.desired_updated,
        reported=merge_patch(twin.reported, patch),
        reported_version=twin.reported_version + 1,
        reported_updated=_stamp(twin.reported_updated, patch, now),
        desired_versions=twin.desired_versions,
    )


def apply_desired(twin: Twin, patch: Mapping[str, Any], now: datetime) -> Twin:
    version = twin.desired_version + 1
    return Twin(
        desired=merge_patch(twin.desired, patch),
        desired_version=version,
        desired_updated=_stamp(twin.desired_updated, patch, now),
        reported=twin.reported,
        reported_version=twin.reported_version,
        reported_updated=twin.reported_updated,
        desired_versions={**twin.desired_versions, **dict.fromkeys(_touched_paths(patch), version)},
    )


def twin_document(twin: Twin) -> Json:
    """The body of a twin GET response, as the SDK expects it (contract §2.4)."""
    return {
        "desired": {**twin.desired, "$version": twin.desired_version},
        "reported": {**twin.reported, "$version": twin.reported_version},
    }
