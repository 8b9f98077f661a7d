"""Publish → queryable latency: one probe device and the latest-telemetry API.

The probe is a device of its own on the plain MQTT port, whichever transport the load
uses: the latency measured is the ingest path's. Every ``interval`` until the load's
window closes it publishes ``{"probe": n}`` (QoS 1, ``n`` counting up) without waiting
for earlier ones, and it keeps polling ``GET /api/devices/{id}/telemetry/probe``
every ``POLL`` seconds. When the API shows ``v``, every probe ``n ≤ v`` still pending became
queryable by now (one device's messages are stored in order): its sample is the time
from its PUBLISH write to that answer. Probes stay 100 ms apart however slow the store
is (publishing and polling are separate threads); a sample's resolution is the poll
interval plus one API answer; polls are sequential, so the probe adds at most 50 small
requests a second to the server under test.

The same probe tells when the store has caught up after a load: because the log is one
ordered stream, once a probe published after the last acknowledged message is queryable,
every acknowledged message before it is stored too (:meth:`LatencyProbe.catch_up`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from aislehub.bench.wire import Target, connect_packet, message_topic
from aislehub.protocol.mqtt import Disconnect, encode_packet, encode_publish

__all__ = ["LatencyProbe"]

API_VERSION = "2022-07-31"
FIELD = "probe"
POLL = 0.02  # seconds between API polls
DISCONNECT = encode_packet(Disconnect())


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
        self.api_times: list[float] = []  # seconds per latest-value request
        self.error: str | None = None
        self._api = http.client.HTTPConnection(api_host, api_port, timeout=timeout)
        self._path = f"/api/devices/{quote(device_id, safe='')}/telemetry/{FIELD}"
        self._path += f"?api-version={API_VERSION}"
        self._headers = {"Authorization": token}
        self._topic = message_topic(device_id)
        self._sock: socket.socket | None = None
        self._seq = 0
        self._until = 0.0
        self._final = -1  # the catch-up probe: not a sample, it is sent after the load
        self._pending: dict[int, float] = {}  # probe value -> monotonic time of its PUBLISH
        self._lock = threading.Lock()  # guards _pending and the socket's writes
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._samplers: list[threading.Thread] = []

    @property
    def missed(self) -> int:
        """Probes published but never seen in the API."""
        return len(self._pending)

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self) -> None:
        if self.target.ca_file is not None:
            # A PUBACK reader thread beside the writers is safe on a plain socket only.
            raise ValueError("the probe connects over plain MQTT")
        sock = socket.create_connection((self.target.host, self.target.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(self.target.dialect, self.device_id))
        reply = _recv_exactly(sock, 4)
        if reply[0] != 0x20 or reply[3] != 0:
            sock.close()
            raise ConnectionError(f"probe CONNACK refused: {reply.hex()}")
        sock.settimeout(None)
        self._sock = sock
        # A plain socket may be read in one thread while others write to it.
        self._reader = self._spawn(self._drain_acks, "latency probe acks")

    def close(self) -> None:
        self.stop_sampling()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(DISCONNECT)
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the PUBACK reader; close() won't
            self._sock.close()
            self._sock = None
        if self._reader is not None:
            self._reader.join(self.timeout)
            self._reader = None
        self._api.close()

    def start_sampling(self, until: float) -> None:
        """Publish a probe every ``interval`` until ``until`` (``time.monotonic``) and poll.

        Publishing and polling run in threads of their own, so a slow API answer delays
        neither the next probe nor its timestamp.
        """
        self._until = until
        self._samplers = [
            self._spawn(self._publish_loop, "latency probe publisher"),
            self._spawn(self._poll_loop, "latency probe poller"),
        ]

    def stop_sampling(self) -> None:
        """Stop publishing and polling; pending probes are resolved by :meth:`catch_up`."""
        self._stop.set()
        for thread in self._samplers:
            thread.join(self.timeout + 5)
        self._samplers = []

    # -- measurement ----------------------------------------------------------------------
    def catch_up(self, timeout: float) -> bool:
        """Publish one more probe and poll until it (and every earlier one) is queryable."""
        self._final = final = self._publish()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._poll()
            if final not in self._pending:
                return True
            time.sleep(POLL)
        return False

    def _publish_loop(self) -> None:
        next_publish = time.monotonic()
        while not self._stop.wait(max(0.0, next_publish - time.monotonic())):
            if time.monotonic() >= self._until:
                return
            next_publish += self.interval
            try:
                self._publish()
            except OSError as exc:
                self.error = repr(exc)
                return

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL):
            self._poll()

    def _publish(self) -> int:
        assert self._sock is not None, "connect() first"
        with self._lock:
            self._seq += 1
            seq = self._seq
            packet = encode_publish(
                self._topic, json.dumps({FIELD: seq}).encode(), 1, seq % 65535 + 1
            )
            self._pending[seq] = time.monotonic()
            self._sock.sendall(packet)
        return seq

    def _poll(self) -> None:
        value = self._latest()
        if not isinstance(value, int | float):
            return
        now = time.monotonic()
        with self._lock:
            seen = [seq for seq in self._pending if seq <= value]
            for seq in seen:
                latency = now - self._pending.pop(seq)
                if seq != self._final:
                    self.samples.append(latency)

    def _latest(self) -> object:
        began = time.monotonic()
        try:
            self._api.request("GET", self._path, headers=self._headers)
            response = self._api.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._api.close()  # reconnects on the next request
            return None
        self.api_times.append(time.monotonic() - began)
        if response.status != 200:
            return None
        return json.loads(body).get("value")

    def _drain_acks(self) -> None:
        """Read and drop the probe's PUBACKs so the socket never backs up."""
        sock = self._sock
        while sock is not None:
            try:
                if not sock.recv(4096):
                    return
            except OSError:
                return

    @staticmethod
    def _spawn(target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the probe connection")
        data += chunk
    return data
