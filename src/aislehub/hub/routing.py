"""Device-bound traffic across processes: the contract and its subjects, without I/O.

When several gateway processes share the engines (``nats_url`` set), a device is held by
whichever process its connection landed on. The hub performs an operation itself when the
device's link is local and otherwise asks the other processes (:class:`RemoteDevices`,
implemented over NATS by :class:`aislehub.hub.nats_routing.NatsRouter`). There is no
presence registry to go stale: every process subscribes to one wildcard subject and the
process holding the device answers; silence within a short timeout means "not connected".

Subjects: ``aislehub-route.<stream>.<app>.<device>.<module>.<op>``. The root is outside
the ingest stream's ``aislehub.<stream>.>`` on purpose: a request published on a stream
subject would be stored and answered by JetStream's PubAck. Ids are escaped into single
tokens (:func:`encode_token`) because NATS gives ``.``, ``*``, ``>`` and white space a
meaning, and device ids may contain the first three (IoT Hub allows ``.`` and ``*``).

Operations (:data:`OPS`):

- ``method``: request-reply. The holder answers ``accepted`` at once, then ``result``
  (status + payload) or ``timeout``; no ``accepted`` within the connection timeout (plus
  :data:`PRESENCE_TIMEOUT`) is a 404, no result within the response timeout a 504.
- ``desired``: the holder publishes the desired patch (the twin itself is in the shared
  metadata store) with its ``$version`` to the device's current link.
- ``c2d``: every process notes that the device has C2D messages waiting in the shared
  store; the holder delivers them now, another process when the device connects to it.
- ``takeover``: a device connected here; another process still holding an older link for
  the same client id closes it ([MQTT-3.1.4-2] across processes).
- ``close``: a device was blocked or deleted; every process closes its links of it.
- ``presence``: scatter-gather; each process holding links of the device answers with
  its modules and the device's own last activity.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aislehub.hub.links import Key, LinkRegistry
    from aislehub.hub.methods import MethodResult

__all__ = [
    "OPS",
    "PRESENCE_TIMEOUT",
    "Presence",
    "RemoteDevices",
    "decode_token",
    "device_subject",
    "encode_token",
    "parse_device_subject",
    "route_root",
]

OPS = frozenset({"method", "desired", "c2d", "takeover", "close", "presence"})

# How long silence means "no process holds the device". Same-machine NATS round trips
# take ~0.2 ms and a LAN's a few; a process busy with a 25 ms decode turn still answers
# well inside this. It is what a request for an unconnected device costs.
PRESENCE_TIMEOUT = 0.25
# After the first presence answer, how long to wait for other processes (modules of one
# device may sit on different processes).
PRESENCE_STRAGGLERS = 0.05

_SAFE = frozenset(string.ascii_letters + string.digits + "-_")
_EMPTY = "~"  # the empty module id; never produced by escaping, which escapes "~"


def encode_token(value: str) -> str:
    """``value`` as one NATS subject token: ``[A-Za-z0-9_-]`` kept, every other UTF-8
    byte as ``%XX``; the empty string as ``~``. Injective, so distinct ids never share a
    subject."""
    if not value:
        return _EMPTY
    if all(c in _SAFE for c in value):
        return value
    return "".join(
        chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in value.encode("utf-8", "surrogatepass")
    )


def decode_token(token: str) -> str:
    if token == _EMPTY:
        return ""
    if "%" not in token:
        return token
    out, i = bytearray(), 0
    while i < len(token):
        if token[i] == "%":
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(token[i]))
            i += 1
    return out.decode("utf-8", "surrogatepass")


def route_root(stream: str) -> str:
    """The subject root of one deployment: processes on the same stream route together."""
    return f"aislehub-route.{encode_token(stream)}"


def device_subject(root: str, key: Key, op: str) -> str:
    app, device, module = key
    return f"{root}.{encode_token(app)}.{encode_token(device)}.{encode_token(module)}.{op}"


def parse_device_subject(root: str, subject: str) -> tuple[Key, str] | None:
    """``(key, op)`` of a subject under ``root``; None for anything else."""
    if not subject.startswith(root + "."):
        return None
    parts = subject[len(root) + 1 :].split(".")
    if len(parts) != 4 or parts[3] not in OPS:
        return None
    try:
        key = (decode_token(parts[0]), decode_token(parts[1]), decode_token(parts[2]))
    except (ValueError, UnicodeDecodeError):
        return None
    return key, parts[3]


@dataclass(slots=True)
class Presence:
    """Where a device is connected, as far as the asked processes know."""

    activity: float | None = None  # the device's own link: epoch seconds of its last packet
    modules: set[str] = field(default_factory=set)  # connected module ids ("" excluded)
    connected: bool = False  # the device's own link (not only a module's)

    @classmethod
    def of(cls, links: LinkRegistry, app_id: str, device_id: str) -> Presence:
        """This process's links of the device."""
        found = cls()
        for key in links.attached():
            if key[:2] != (app_id, device_id):
                continue
            if key[2]:
                found.modules.add(key[2])
            elif (link := links.get(key)) is not None:
                found.connected, found.activity = True, link.last_activity()
        return found

    def merge(self, other: Presence) -> Presence:
        activity = max((a for a in (self.activity, other.activity) if a is not None), default=None)
        return Presence(activity, self.modules | other.modules, self.connected or other.connected)

    def to_json(self) -> dict[str, Any]:
        return {"activity": self.activity, "modules": sorted(self.modules), "own": self.connected}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Presence:
        activity = data.get("activity")
        return cls(
            float(activity) if activity is not None else None,
            {str(m) for m in data.get("modules", ())},
            bool(data.get("own")),
        )


class RemoteDevices(Protocol):
    """What the hub asks of the other processes when a device is not held locally."""

    async def invoke(
        self,
        key: Key,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float,
    ) -> MethodResult:
        """Run a direct method on the process holding ``key``: NotFound / GatewayTimeout
        exactly as :meth:`aislehub.hub.methods.MethodInvoker.invoke` raises them."""
        ...

    def push_desired(self, key: Key, version: int, body: bytes) -> None:
        """Queue a desired patch (``body`` includes ``$version``) for the holder's link."""

    def notify_c2d(self, key: Key) -> None:
        """Queue: C2D messages wait for ``key`` in the shared store."""

    def announce_connected(self, key: Key) -> None:
        """Queue: ``key`` connected here; older links elsewhere must close."""

    def close_device(self, app_id: str, device_id: str, reason: str) -> None:
        """Queue: close every link of the device (and its modules) everywhere."""

    async def presence(self, app_id: str, device_id: str) -> Presence:
        """The device's links held by every process (including this one)."""
        ...
