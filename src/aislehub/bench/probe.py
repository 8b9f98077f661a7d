"""Publish → queryable latency: one probe device and the latest-telemetry API.

Every ``interval`` the probe publishes ``{"probe": n}`` (QoS 1, a fresh ``n`` each time) and
polls ``GET /api/devices/{id}/telemetry/probe`` until the API returns ``n``; the time from
the PUBLISH write to that answer is one sample. Polls are 10 ms apart for the first 200 ms
and 25 ms after that, so the probe adds at most ~100 small requests a second to the server
under test; the resolution of a sample is the poll interval.

The same probe tells when the store has caught up after a load: because the log is one
ordered stream, once a probe sent after the last acknowledged message is queryable, every
acknowledged message before it is stored too.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import quote

from aislehub.bench.wire import Target, connect_packet, message_topic
from aislehub.protocol.mqtt import encode_publish

__all__ = ["LatencyProbe"]

API_VERSION = "2022-07-31"
FIELD = "probe"


class LatencyProbe:
    def __init__(
        self,
        target: Target,
        api_host: str,
        api_port: int,
        token: str,
        device_id: str,
        interval: float = 0.1,
        timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.device_id = device_id
        self.interval = interval
        self.timeout = timeout
        self.samples: list[float] = []
        self.missed = 0
        self.error: str | None = None
        self._api = http.client.HTTPConnection(api_host, api_port, timeout=timeout)
        self._path = (
            f"/api/devices/{quote(device_id, safe='')}/telemetry/{FIELD}?api-version={API_VERSION}"
        )
        self._headers = {"Authorization": token}
        self._sock: socket.socket | None = None
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self) -> None:
        sock = socket.create_connection((self.target.host, self.target.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if (tls := self.target.ssl_context()) is not None:
            sock = tls.wrap_socket(sock, server_hostname=self.target.host)
        sock.sendall(connect_packet(self.target.dialect, self.device_id))
        reply = _recv_exactly(sock, 4)
        if reply[0] != 0x20 or reply[3] != 0:
            sock.close()
            raise ConnectionError(f"probe CONNACK refused: {reply.hex()}")
        self._sock = sock

    def close(self) -> None:
        self.stop_sampling()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._api.close()

    def start_sampling(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_loop, name="latency probe", daemon=True)
        self._thread.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
            self._thread = None

    # -- measurement ----------------------------------------------------------------------
    def measure_once(self, timeout: float | None = None) -> float | None:
        """Publish one fresh value; seconds until the API shows it, or None on timeout."""
        assert self._sock is not None, "connect() first"
        self._seq += 1
        seq = self._seq
        packet_id = seq % 65535 + 1
        body = json.dumps({FIELD: seq}).encode()
        sent = time.monotonic()
        self._sock.sendall(encode_publish(message_topic(self.device_id), body, 1, packet_id))
        _recv_exactly(self._sock, 4)  # PUBACK: the probe has one message in flight
        limit = sent + (self.timeout if timeout is None else timeout)
        while time.monotonic() < limit:
            if self._latest() == seq:
                return time.monotonic() - sent
            time.sleep(0.01 if time.monotonic() - sent < 0.2 else 0.025)
        return None

    def _sample_loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                latency = self.measure_once()
            except (OSError, ConnectionError) as exc:
                self.error = repr(exc)
                return
            if latency is None:
                self.missed += 1
            else:
                self.samples.append(latency)
            self._stop.wait(max(0.0, began + self.interval - time.monotonic()))

    def _latest(self) -> object:
        try:
            self._api.request("GET", self._path, headers=self._headers)
            response = self._api.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._api.close()  # reconnects on the next request
            return None
        if response.status != 200:
            return None
        return json.loads(body).get("value")


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the probe connection")
        data += chunk
    return data
