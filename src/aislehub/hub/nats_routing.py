"""Device-bound routing over NATS core request-reply (:mod:`aislehub.hub.routing` says what).

One connection per process, one wildcard subscription ``<root>.>`` for requests and one
``<inbox>.*`` for the replies to this process's own requests (each request a token under
it, as the ingest log does for PubAcks). Fire-and-forget operations (desired patch, C2D,
takeover, close) are queued by the hub's synchronous code and published in order by one
sender task.

Resource handling: ``start`` connects and subscribes; ``close`` cancels the method calls
being served and the sender, then drains the connection. Error handling: a request that
cannot be sent (NATS down) is answered like silence: the device counts as not connected
(404), never as a server error; a malformed message is dropped and counted. NATS core is
at-most-once: a desired patch or C2D notice lost with a broken connection is recovered
when the device reconnects (twin GET after reconnect, pending C2D delivered on CONNECT).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from aislehub.errors import GatewayTimeout, NotFound
from aislehub.hub.links import Key
from aislehub.hub.methods import MethodResult
from aislehub.hub.routing import (
    PRESENCE_STRAGGLERS,
    PRESENCE_TIMEOUT,
    Presence,
    device_subject,
    parse_device_subject,
    route_root,
)
from aislehub.protocol import iothub

if TYPE_CHECKING:
    from aislehub.hub.hub import DeviceHub

__all__ = ["NatsRouter"]

log = logging.getLogger(__name__)

_Reply = dict[str, Any]


class NatsRouter:
    """:class:`aislehub.hub.routing.RemoteDevices` for ``hub``, on the NATS at ``url``."""

    def __init__(
        self, url: str, stream: str, hub: DeviceHub, presence_timeout: float = PRESENCE_TIMEOUT
    ) -> None:
        self.url = url
        self.root = route_root(stream)
        self.hub = hub
        self.presence_timeout = presence_timeout
        self.origin = secrets.token_hex(8)  # this process, in messages it broadcasts
        self._nc: Client | None = None
        self._inbox = ""
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Queue[_Reply]] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._nc = await nats.connect(
            self.url,
            name=f"aislehub-route:{self.origin}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        await self._nc.subscribe(f"{self.root}.>", cb=self._on_request)
        self._sender = asyncio.create_task(self._send_loop(), name="device-route sender")

    async def close(self) -> None:
        tasks = [*self._calls, *([self._sender] if self._sender else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError):
                await self._nc.drain()

    @property
    def _client(self) -> Client:
        if self._nc is None:
            raise RuntimeError("NatsRouter used before start()")
        return self._nc

    # -- asking other processes (RemoteDevices) --------------------------------------
    async def invoke(
        self,
        key: Key,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float,
    ) -> MethodResult:
        request = {
            "name": name,
            "payload": payload,
            "responseTimeout": response_timeout,
            "connectTimeout": connect_timeout,
        }
        self.hub.metrics.inc("device_routed_total", op="method")
        async with self._request(key, "method", request) as replies:
            first = await _next(replies, connect_timeout + self.presence_timeout)
            if first is None:
                raise NotFound(f"Device {key[1]!r} is not connected; the command was not sent.")
            reply = await _next(replies, response_timeout + self.presence_timeout)
        if reply is None or reply.get("kind") == "timeout":
            raise GatewayTimeout(
                f"Device {key[1]!r} did not answer {name!r} within {response_timeout:g} s."
            )
        if reply.get("kind") != "result":
            raise NotFound(f"Device {key[1]!r} disconnected before it answered {name!r}.")
        return MethodResult(int(reply["status"]), reply.get("payload"))

    async def presence(self, app_id: str, device_id: str) -> Presence:
        found = Presence()
        async with self._request((app_id, device_id, ""), "presence", {}) as replies:
            wait = self.presence_timeout
            while (reply := await _next(replies, wait)) is not None:
                found = found.merge(Presence.from_json(reply))
                wait = PRESENCE_STRAGGLERS
        return found

    def push_desired(self, key: Key, version: int, body: bytes) -> None:
        self._queue(key, "desired", {"version": version, "body": body.decode("utf-8")})

    def notify_c2d(self, key: Key) -> None:
        self._queue(key, "c2d", {})

    def announce_connected(self, key: Key) -> None:
        self._queue(key, "takeover", {"at": time.time()})

    def close_device(self, app_id: str, device_id: str, reason: str) -> None:
        self._queue((app_id, device_id, ""), "close", {"reason": reason})

    def _queue(self, key: Key, op: str, message: dict[str, Any]) -> None:
        self.hub.metrics.inc("device_routed_total", op=op)
        body = orjson.dumps({**message, "origin": self.origin})
        self._outbox.put_nowait((device_subject(self.root, key, op), body))

    async def _send_loop(self) -> None:
        while True:
            subject, body = await self._outbox.get()
            try:
                await self._client.publish(subject, body)
            except (NatsError, OSError) as exc:
                log.warning("device route: could not publish %s: %r", subject, exc)

    @contextlib.asynccontextmanager
    async def _request(
        self, key: Key, op: str, message: dict[str, Any]
    ) -> AsyncIterator[asyncio.Queue[_Reply]]:
        """Publish a request; yields the queue its replies arrive on (none if unsendable)."""
        token = str(next(self._tokens))
        replies: asyncio.Queue[_Reply] = asyncio.Queue()
        self._waiting[token] = replies
        body = orjson.dumps({**message, "origin": self.origin})
        try:
            try:
                subject = device_subject(self.root, key, op)
                await self._client.publish(subject, body, reply=f"{self._inbox}.{token}")
            except (NatsError, OSError) as exc:
                log.warning("device route: could not send %s: %r", op, exc)
            yield replies
        finally:
            del self._waiting[token]

    async def _on_reply(self, msg: Msg) -> None:
        replies = self._waiting.get(msg.subject[len(self._inbox) + 1 :])
        if replies is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                replies.put_nowait(orjson.loads(msg.data))

    # -- answering them (this process holds the device) ------------------------------
    async def _on_request(self, msg: Msg) -> None:
        parsed = parse_device_subject(self.root, msg.subject)
        try:
            message = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            message = None
        if parsed is None or not isinstance(message, dict):
            self.hub.metrics.inc("device_route_malformed_total")
            return
        key, op = parsed
        mine = message.get("origin") == self.origin
        match op:
            case "method":
                self._serve_call(key, message, msg.reply)
            case "presence":
                await self._answer_presence(key, msg.reply)
            case "desired":
                self._push_desired(key, message)
            case "c2d":
                self.hub.note_c2d_waiting(key)
            case "takeover" if not mine:
                self._close_older(key, float(message.get("at", 0.0)))
            case "close" if not mine:
                reason = str(message.get("reason", "closed by another process"))
                for link in self.hub.links.for_device(key[0], key[1]):
                    link.close(reason)

    def _serve_call(self, key: Key, message: dict[str, Any], reply: str) -> None:
        if not reply:
            return
        task = asyncio.create_task(self._call(key, message, reply), name=f"routed method {key}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, key: Key, message: dict[str, Any], reply: str) -> None:
        """Wait (up to the connection timeout) for the device here; if it comes, run it."""
        connect_timeout = float(message.get("connectTimeout", 0.0))
        if await self.hub.links.wait_for(key, connect_timeout) is None:
            return  # not ours: stay silent, the holder (if any) answers
        await self._reply(reply, {"kind": "accepted"})
        try:
            result = await self.hub.methods.invoke(
                key, str(message["name"]), message.get("payload"), float(message["responseTimeout"])
            )
        except GatewayTimeout:
            await self._reply(reply, {"kind": "timeout"})
        except NotFound:
            await self._reply(reply, {"kind": "gone"})
        else:
            await self._reply(
                reply, {"kind": "result", "status": result.status, "payload": result.payload}
            )

    async def _answer_presence(self, key: Key, reply: str) -> None:
        found = Presence.of(self.hub.links, key[0], key[1])
        if reply and (found.connected or found.modules):
            await self._reply(reply, found.to_json())

    def _push_desired(self, key: Key, message: dict[str, Any]) -> None:
        link = self.hub.links.get(key)
        if link is not None:
            topic = iothub.desired_patch_topic(int(message["version"]))
            link.publish(topic, str(message["body"]).encode("utf-8"), qos=0)

    def _close_older(self, key: Key, connected_at: float) -> None:
        link, since = self.hub.links.get(key), self.hub.links.attached_since(key)
        if link is not None and since is not None and since < connected_at:
            link.close("session taken over by a new connection with the same client id")

    async def _reply(self, subject: str, message: _Reply) -> None:
        with contextlib.suppress(NatsError, OSError):
            await self._client.publish(subject, orjson.dumps(message))


async def _next(replies: asyncio.Queue[_Reply], timeout: float) -> _Reply | None:  # noqa: ASYNC109
    try:
        return await asyncio.wait_for(replies.get(), timeout)
    except TimeoutError:
        return None
