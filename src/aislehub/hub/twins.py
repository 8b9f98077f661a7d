"""Device twins: versioned desired and reported documents, merged as JSON Merge Patch.

IoT Hub semantics: a PATCH merges recursively, ``null`` removes a key, and each side keeps
its own ``$version`` that grows by one per accepted patch. Metadata keeps the last update
time of every top-level property (and of each property inside a PnP component).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aislehub.store.metadata import Json, Twin


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
    stamp = now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {**updated, **dict.fromkeys(_touched_paths(patch), stamp)}


def apply_reported(twin: Twin, patch: Mapping[str, Any], now: datetime) -> Twin:
    return Twin(
        desired=twin.desired,
        desired_version=twin.desired_version,
        desired_updated=twin.desired_updated,
        reported=merge_patch(twin.reported, patch),
        reported_version=twin.reported_version + 1,
        reported_updated=_stamp(twin.reported_updated, patch, now),
    )


def apply_desired(twin: Twin, patch: Mapping[str, Any], now: datetime) -> Twin:
    return Twin(
        desired=merge_patch(twin.desired, patch),
        desired_version=twin.desired_version + 1,
        desired_updated=_stamp(twin.desired_updated, patch, now),
        reported=twin.reported,
        reported_version=twin.reported_version,
        reported_updated=twin.reported_updated,
    )


def twin_document(twin: Twin) -> Json:
    """The body of a twin GET response, as the SDK expects it (contract §2.4)."""
    return {
        "desired": {**twin.desired, "$version": twin.desired_version},
        "reported": {**twin.reported, "$version": twin.reported_version},
    }


def properties_view(twin: Twin) -> Json:
    """IoT Central's device-properties shape: reported values plus ``$metadata`` per level."""
    view: Json = {}
    meta: Json = {}
    for key, value in twin.reported.items():
        if isinstance(value, dict) and value.get("__t") == "c":
            view[key] = _component_view(key, value, twin)
        else:
            view[key] = value
            meta[key] = {"lastUpdateTime": twin.reported_updated.get(key)}
    for key, value in twin.desired.items():
        if isinstance(value, dict) and value.get("__t") == "c":
            comp = view.setdefault(key, {"$metadata": {}})
            for prop, desired in value.items():
                if prop != "__t":
                    comp["$metadata"].setdefault(prop, {}).update(
                        desiredValue=desired, desiredVersion=twin.desired_version
                    )
        else:
            meta.setdefault(key, {}).update(desiredValue=value, desiredVersion=twin.desired_version)
    view["$metadata"] = meta
    return view


def _component_view(name: str, reported: Json, twin: Twin) -> Json:
    comp: Json = {k: v for k, v in reported.items() if k != "__t"}
    comp["$metadata"] = {
        k: {"lastUpdateTime": twin.reported_updated.get(f"{name}/{k}")} for k in comp
    }
    return comp
