"""What a device does with cloud-to-device traffic: the application's callbacks.

Each incoming method call, desired patch or C2D message runs its callback in its own task
(owned by the client's TaskGroup). The functions here contain the callbacks' failures: a
method that raises is answered with 500, anything else is logged; a buggy callback never
takes the connection down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MethodHandler = Callable[[str, Any], Awaitable[tuple[int, Any]]]
DesiredHandler = Callable[[dict[str, Any]], Awaitable[None]]
C2DHandler = Callable[["CloudMessage"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Handlers:
    """Callbacks for cloud-to-device traffic; each call runs in its own task."""

    method: MethodHandler | None = None  # (name, payload) -> (status, response payload)
    desired: DesiredHandler | None = None  # the patch, with "$version"
    c2d: C2DHandler | None = None


@dataclass(frozen=True, slots=True)
class CloudMessage:
    """A cloud-to-device message: body and decoded property bag."""

    payload: bytes
    properties: dict[str, str]


async def call_method(
    handlers: Handlers, device_id: str, name: str, body: bytes
) -> tuple[int, Any]:
    """``(status, JSON payload)`` for a method request: 404 without a handler, 400 for a
    body that is not JSON, 500 if the handler raises."""
    if handlers.method is None:
        return 404, {"message": f"method {name!r} is not implemented"}
    try:
        request = json.loads(body or b"null")  # as the SDK (contract §2.4)
    except ValueError:
        return 400, {"message": "request payload is not JSON"}
    try:
        return await handlers.method(name, request)
    except Exception:
        log.exception("%s: method %r failed", device_id, name)
        return 500, {"message": f"method {name!r} failed on the device"}


async def apply_desired(handlers: Handlers, device_id: str, body: bytes) -> None:
    """Hand a desired-property patch (a JSON object with ``$version``) to the handler."""
    if handlers.desired is None:
        return
    try:
        patch = json.loads(body)
        if isinstance(patch, dict):
            await handlers.desired(patch)
    except Exception:
        log.exception("%s: desired-property patch failed", device_id)


async def deliver_c2d(handlers: Handlers, message: CloudMessage) -> None:
    if handlers.c2d is None:
        return
    try:
        await handlers.c2d(message)
    except Exception:
        log.exception("C2D handler failed")
