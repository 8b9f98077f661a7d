"""Direct methods: a request to the device's current link, matched to its reply by ``$rid``."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import orjson

from aislehub.errors import GatewayTimeout, NotFound
from aislehub.hub.links import Key, LinkRegistry
from aislehub.metrics import Metrics
from aislehub.protocol import iothub


@dataclass(frozen=True, slots=True)
class MethodResult:
    status: int
    payload: Any


class MethodInvoker:
    def __init__(self, links: LinkRegistry, metrics: Metrics) -> None:
        self._links = links
        self._metrics = metrics
        self._pending: dict[tuple[Key, str], asyncio.Future[MethodResult]] = {}
        self._rids = itertools.count(1)

    async def invoke(
        self,
        key: Key,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float = 0.0,
    ) -> MethodResult:
        link = await self._links.wait_for(key, connect_timeout)
        if link is None:
            raise NotFound(f"Device {key[1]!r} is not connected; the command was not sent.")
        rid = format(next(self._rids), "x")
        future: asyncio.Future[MethodResult] = asyncio.get_running_loop().create_future()
        self._pending[(key, rid)] = future
        body = b"" if payload is None else orjson.dumps(payload)
        link.publish(iothub.method_request_topic(name, rid), body, qos=0)
        self._metrics.inc("methods_invoked_total")
        try:
            return await asyncio.wait_for(future, response_timeout)
        except TimeoutError:
            raise GatewayTimeout(
                f"Device {key[1]!r} did not answer {name!r} within {response_timeout:g} s."
            ) from None
        finally:
            self._pending.pop((key, rid), None)

    def on_response(self, key: Key, rid: str, status: int, body: bytes) -> bool:
        """A device's ``$iothub/methods/res/{status}/?$rid=`` publish; False if nobody waits."""
        future = self._pending.get((key, rid))
        if future is None or future.done():
            return False
        try:
            payload = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError:
            payload = body.decode("utf-8", "replace")
        future.set_result(MethodResult(status, payload))
        return True
