"""Listeners and the keep-alive sweeper.

With ``reuse_port`` (``serve --workers N``) the listeners bind with SO_REUSEPORT: several
processes share each port and the kernel spreads new connections among them.

Resource handling: each listener is an asyncio server whose connections are closed when
the gateway stops. The sweeper closes connections silent for 1.5 × their keep-alive
([MQTT-3.1.2-24]) and those that never sent CONNECT.
Error handling: a failing accept (out of file descriptors) is asyncio's to log and retry;
a connection's own failure closes that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from aislehub.gateway.connection import MqttConnection
from aislehub.gateway.context import GatewayContext
from aislehub.gateway.websocket import WebSocketMqttAdapter

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0


class Gateway:
    def __init__(self, ctx: GatewayContext, tls: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.tls = tls
        self.servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.ctx.settings
        loop = asyncio.get_running_loop()
        listeners: list[tuple[int, ssl.SSLContext | None, bool]] = [(s.mqtt_port, self.tls, False)]
        if s.ws_port:
            listeners.append((s.ws_port, self.tls, True))
        if s.plain_mqtt_port:
            listeners.append((s.plain_mqtt_port, None, False))
        for port, tls, websocket in listeners:
            server = await loop.create_server(
                lambda ws=websocket: self._protocol(ws),
                s.bind,
                port,
                ssl=tls,
                reuse_address=True,
                reuse_port=s.reuse_port or None,
                backlog=4096,
                ssl_handshake_timeout=30 if tls else None,
            )
            kind = "mqtt+ws" if websocket else ("mqtts" if tls else "mqtt")
            log.info("listening for %s on %s:%d", kind, s.bind, port)
            self.servers.append(server)
        self._sweeper = asyncio.create_task(self._sweep(), name="keep-alive sweeper")

    def _protocol(self, websocket: bool) -> MqttConnection:
        return MqttConnection(self.ctx, WebSocketMqttAdapter() if websocket else None)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            for conn in list(self.ctx.connections):
                timeout = conn.keep_alive_timeout
                if timeout is not None and now - conn.last_rx > timeout:
                    self.ctx.metrics.inc("mqtt_keepalive_timeouts_total")
                    conn.close(f"no packet for {timeout:g} s (keep-alive)")

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.ctx.hub.links.close_all("server shutting down")
        for conn in list(self.ctx.connections):
            conn.close("server shutting down")
        for server in self.servers:
            await server.wait_closed()
