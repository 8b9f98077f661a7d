"""Device properties as rules read them: reported (twin) and cloud values, cached per device.

``refresh`` asks the metadata store which twins and cloud properties changed since the last
call (twin ``reported_version``, cloud ``updated`` stamps) and reads only those, so polling
every half second costs two narrow queries. Values are flattened to the rule format's
names: ``prop`` and ``component.prop``; a writable property acknowledged the Plug and Play
way (``{"value", "ac", "av"}``) reads as its value; a cloud property is read under its
name when no reported property has it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from aislehub.store.schema import cloud_properties, twins

__all__ = ["PropertyCache", "flatten"]

Key = tuple[str, str]  # (app, device)


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and "value" in value and "ac" in value:
        return value["value"]
    return value


def flatten(reported: dict[str, Any], cloud: dict[str, Any]) -> dict[str, Any]:
    out = {name: value for name, value in cloud.items()}
    for name, value in reported.items():
        if name.startswith("$"):
            continue
        if isinstance(value, dict) and value.get("__t") == "c":
            for inner, v in value.items():
                if inner != "__t":
                    out[f"{name}.{inner}"] = _unwrap(v)
        else:
            out[name] = _unwrap(value)
    return out


class PropertyCache:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._versions: dict[tuple[str, str, str], object] = {}
        self._reported: dict[Key, dict[str, Any]] = {}
        self._cloud: dict[Key, dict[str, Any]] = {}

    def get(self, key: Key) -> dict[str, Any]:
        return flatten(self._reported.get(key, {}), self._cloud.get(key, {}))

    def known(self) -> Iterable[Key]:
        return set(self._reported) | set(self._cloud)

    def refresh(self, apps: set[str]) -> set[Key]:
        """Read what changed for devices of ``apps``; the keys whose properties changed."""
        if not apps:
            return set()
        t, c = twins.c, cloud_properties.c
        changed: set[Key] = set()
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.app_id, t.device_id, t.reported_version).where(
                    t.app_id.in_(apps) & (t.module_id == "")
                )
            )
            stale = [(r[0], r[1]) for r in rows if self._versions.get(("t", r[0], r[1])) != r[2]]
            for app, device in stale:
                row = conn.execute(
                    sa.select(t.reported, t.reported_version).where(
                        (t.app_id == app) & (t.device_id == device) & (t.module_id == "")
                    )
                ).first()
                if row is not None:
                    self._reported[(app, device)] = dict(row[0])
                    self._versions[("t", app, device)] = row[1]
                    changed.add((app, device))
            for app, device, values, updated in conn.execute(
                sa.select(c.app_id, c.device_id, c.properties, c.updated).where(c.app_id.in_(apps))
            ):
                stamp = repr(sorted(updated.items()))
                if self._versions.get(("c", app, device)) != stamp:
                    self._versions[("c", app, device)] = stamp
                    self._cloud[(app, device)] = dict(values)
                    changed.add((app, device))
        return changed
