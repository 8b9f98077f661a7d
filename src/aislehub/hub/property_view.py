"""A twin as IoT Central shows it: the properties view and writable-property acknowledgements.

A device acknowledges a writable property by reporting ``{"value": v, "ac": code, "av":
version, "ad": "text"}`` (PnP convention, contract §2.5). From that and the desired side:

* ``pending``: no acknowledgement yet of the newest desired value (``av`` older than the
  ``$version`` that wrote the property, or missing, or a non-final ``ac`` such as 1xx);
* ``accepted``: ``ac`` 2xx with ``av`` at least that version;
* ``rejected``: ``ac`` ≥ 400 with ``av`` at least that version (``ad`` says why).

When the device's template declares a property writable, the view shows the acknowledged
``value`` unwrapped, as IoT Central does; without a template the reported object is shown as
the device sent it (it may be an ordinary object property). ``$metadata`` carries
``desiredValue``, ``desiredVersion``, ``ackVersion``, ``ackCode``, ``ackDescription`` and
``lastUpdateTime`` whichever apply.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

from aislehub.store.cloud_properties import CloudValues
from aislehub.store.metadata import Json, Twin

Writable = Collection[tuple[str | None, str]] | None  # (component, name); None: no template
_ACK_KEYS = frozenset({"value", "ac", "av", "ad"})


@dataclass(frozen=True, slots=True)
class Ack:
    code: int
    version: int | None
    description: str | None
    value: Any


def ack_of(reported: object) -> Ack | None:
    """The acknowledgement a reported value carries, if it has the PnP shape."""
    if not isinstance(reported, dict) or not set(reported) <= _ACK_KEYS:
        return None
    code, version, text = reported.get("ac"), reported.get("av"), reported.get("ad")
    if not _is_int(code):
        return None
    return Ack(
        code,
        version if _is_int(version) else None,
        text if isinstance(text, str) else None,
        reported.get("value"),
    )


def ack_state(desired_version: int, ack: Ack | None) -> str:
    if ack is None or ack.version is None or ack.version < desired_version:
        return "pending"
    if 200 <= ack.code < 300:
        return "accepted"
    return "rejected" if ack.code >= 400 else "pending"


def properties_view(
    twin: Twin, writable: Writable = None, cloud: CloudValues | None = None
) -> Json:
    """Reported values with ``$metadata`` per level; components nested by name."""
    view = _level(twin, None, _plain(twin.reported), _plain(twin.desired), writable)
    meta = view.pop("$metadata")
    for name in _components(twin):
        reported, desired = twin.reported.get(name), twin.desired.get(name)
        view[name] = _level(twin, name, _inner(reported), _inner(desired), writable)
    if cloud is not None:
        for name, value in cloud.values.items():
            view[name] = value
            meta[name] = {"lastUpdateTime": cloud.updated.get(name)}
    view["$metadata"] = meta
    return view


def property_status(twin: Twin, writable: Writable = None) -> list[Json]:
    """One entry per desired (writable) property: its acknowledgement state and details."""
    found = []
    for component, name, value in _desired(twin):
        if writable is not None and (component, name) not in writable:
            continue
        path = f"{component}/{name}" if component else name
        version = twin.desired_versions.get(path, twin.desired_version)
        side = _inner(twin.reported.get(component)) if component else twin.reported
        ack = ack_of(side.get(name))
        entry: Json = {
            "component": component,
            "name": name,
            "state": ack_state(version, ack),
            "desiredValue": value,
            "desiredVersion": version,
        }
        if ack is not None:
            entry |= _ack_fields(ack) | {"lastUpdateTime": twin.reported_updated.get(path)}
        found.append(entry)
    return found


def _level(
    twin: Twin, component: str | None, reported: Json, desired: Json, writable: Writable
) -> Json:
    prefix = f"{component}/" if component else ""
    out: Json = {}
    meta: Json = {}
    for name, value in reported.items():
        ack = ack_of(value)
        unwrap = ack is not None and writable is not None and (component, name) in writable
        out[name] = ack.value if ack is not None and unwrap else value
        meta[name] = {"lastUpdateTime": twin.reported_updated.get(prefix + name)}
        if ack is not None:
            meta[name] |= _ack_fields(ack)
    for name, value in desired.items():
        version = twin.desired_versions.get(prefix + name, twin.desired_version)
        meta.setdefault(name, {}).update(desiredValue=value, desiredVersion=version)
    out["$metadata"] = meta
    return out


def _ack_fields(ack: Ack) -> Json:
    fields: Json = {"ackCode": ack.code}
    if ack.version is not None:
        fields["ackVersion"] = ack.version
    if ack.description is not None:
        fields["ackDescription"] = ack.description
    return fields


def _desired(twin: Twin) -> Iterator[tuple[str | None, str, Any]]:
    for key, value in twin.desired.items():
        if _is_component(value):
            yield from ((key, name, v) for name, v in _inner(value).items())
        else:
            yield None, key, value


def _components(twin: Twin) -> list[str]:
    names = [k for side in (twin.reported, twin.desired) for k, v in side.items()]
    sides = (twin.reported, twin.desired)
    return list(dict.fromkeys(n for n in names if any(_is_component(s.get(n)) for s in sides)))


def _is_component(value: object) -> bool:
    return isinstance(value, dict) and value.get("__t") == "c"


def _plain(side: Json) -> Json:
    return {k: v for k, v in side.items() if not _is_component(v)}


def _inner(value: object) -> Json:
    return {k: v for k, v in value.items() if k != "__t"} if isinstance(value, dict) else {}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
