"""Several ``aislehub serve`` processes on one set of engines (PostgreSQL + NATS).

Two gateway processes (``--role gateway,api``) and one store writer (``--role ingest``)
share an install. Which process holds a device is made deterministic by address: each
gateway listens on its own loopback address, or, to move a device by a restart, both
share one address with SO_REUSEPORT and the test asks each process (its own
``devices_connected`` gauge) which one holds it.

- A direct method, a desired patch and a C2D message reach an official-SDK device
  through the API of the process that does not hold it; connectivity is answered there.
- A device moved to the other process by a restart keeps working (methods and patches
  after it reconnected elsewhere, without re-subscribing).
- ``kill -9`` of a gateway process under QoS 1 load: every acknowledged message id is in
  the PostgreSQL telemetry store exactly once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from azure.iot.device import IoTHubDeviceClient, Message, MethodResponse

from aislehub.bench.generator import LoadSpec, run_load
from aislehub.bench.server import insert_devices, scale_env
from aislehub.bench.wire import Dialect, Target
from tests.e2e.test_plain_mqtt import create_device
from tests.e2e.test_scale_engines import _delete_stream
from tests.servers import Server, aislehub, free_port, next_loopback, wait_until
from tests.services import postgres_database, require_nats, unique_name

pytestmark = [
    pytest.mark.timeout(90),
    # The SDK (paho-mqtt 1.6 underneath) leaves its socket pairs to the garbage collector.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@dataclass
class Cluster:
    env: dict[str, str]
    data_dir: Path
    init: dict[str, Any]
    hosts: list[str]
    telemetry_url: str
    servers: list[Server] = field(default_factory=list)

    def server(self, host: str, roles: str, reuse_port: bool = False) -> Server:
        """A server process (not started) on ``host`` running ``roles``."""
        server = Server(host, self.data_dir, free_port(host), free_port(host), self.init)
        server.env = {**self.env, "AISLEHUB_ROLES": roles, "AISLEHUB_WS_PORT": "0"}
        if reuse_port:
            server.env["AISLEHUB_REUSE_PORT"] = "1"
        self.servers.append(server)
        return server

    def group_key(self) -> str:
        with self.servers[0].client() as api:
            group = api.get("/enrollmentGroups/SAS-IoT-Devices").json()
        return str(group["attestation"]["symmetricKey"]["primaryKey"])


def start_all(*servers: Server) -> None:
    with ThreadPoolExecutor(len(servers)) as pool:
        for done in [pool.submit(s.start) for s in servers]:
            done.result()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    nats_url = require_nats()
    stream = unique_name("workers").upper()
    hosts = [next_loopback() for _ in range(3)]
    with postgres_database() as metadata_url, postgres_database() as telemetry_url:
        env = scale_env(metadata_url, telemetry_url.replace("+psycopg", ""), nats_url, stream)
        data_dir = tmp_path / "install"
        names = [arg for host in hosts for arg in ("--hostname", host)]
        out = subprocess.run(
            aislehub("init", "--data-dir", str(data_dir), *names),
            check=True,
            capture_output=True,
            timeout=60,
            env={**os.environ, **env},
        )
        cluster = Cluster(env, data_dir, json.loads(out.stdout), hosts, telemetry_url)
        try:
            yield cluster
        finally:
            for server in cluster.servers:
                if server.proc is not None:
                    server.stop()
            _delete_stream(nats_url, stream)


class SdkDevice:
    """An official-SDK device that answers every method and queues patches and C2D."""

    def __init__(self, cluster: Cluster, host: str, device_id: str, key: str) -> None:
        self.id = device_id
        self.patches: queue.Queue[dict[str, Any]] = queue.Queue()
        self.messages: queue.Queue[Message] = queue.Queue()
        self.client = IoTHubDeviceClient.create_from_symmetric_key(
            symmetric_key=key,
            hostname=host,
            device_id=device_id,
            server_verification_cert=Path(cluster.init["caCertPath"]).read_text(),
            connection_retry_interval=1,
        )
        self.client.connect()
        self.client.on_twin_desired_properties_patch_received = self.patches.put
        self.client.on_method_request_received = self._answer
        self.client.on_message_received = self.messages.put
        time.sleep(0.5)  # the SDK subscribes lazily when a handler is set

    def _answer(self, request: Any) -> None:
        response = {"echo": request.payload, "name": request.name}
        self.client.send_method_response(
            MethodResponse.create_from_method_request(request, 200, response)
        )

    def next_patch_with(self, name: str) -> dict[str, Any]:
        patch = self.patches.get(timeout=10)
        while name not in patch:  # after a reconnect the SDK may replay a twin-derived patch
            patch = self.patches.get(timeout=10)
        return patch


def invoke(server: Server, device_id: str, name: str, request: Any, **body: Any) -> httpx.Response:
    with server.client() as api:
        return api.post(
            f"/devices/{device_id}/commands/{name}",
            json={"request": request, "responseTimeout": 10, **body},
        )


def assert_reaches(server: Server, device: SdkDevice, setpoint: int) -> None:
    """A method and a desired patch sent through ``server``'s API reach ``device``."""
    r = invoke(server, device.id, "reboot", {"delay": setpoint})
    assert r.status_code == 201, r.text
    assert r.json()["responseCode"] == 200
    assert r.json()["response"] == {"echo": {"delay": setpoint}, "name": "reboot"}
    with server.client() as api:
        r = api.patch(f"/devices/{device.id}/properties", json={"setpoint": setpoint})
    assert r.status_code == 202, r.text
    patch = device.next_patch_with("setpoint")
    assert patch["setpoint"] == setpoint and patch["$version"] >= 2


def devices_connected(server: Server) -> float:
    text = httpx.get(f"http://{server.host}:{server.http_port}/metrics", timeout=10).text
    lines = [x for x in text.splitlines() if x.startswith("aislehub_devices_connected")]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_method_patch_and_c2d_through_the_process_not_holding_the_device(
    cluster: Cluster,
) -> None:
    near, far = cluster.hosts[0], cluster.hosts[1]
    holder = cluster.server(near, "gateway,api")
    other = cluster.server(far, "gateway,api")
    start_all(holder, other, cluster.server(cluster.hosts[2], "ingest"))
    key = create_device(other, "cooler.1*x")  # '.' and '*' mean something to NATS
    create_device(other, "absent-1")
    device = SdkDevice(cluster, near, "cooler.1*x", key)
    try:
        assert devices_connected(holder) == 1 and devices_connected(other) == 0
        assert_reaches(other, device, 5)
        with other.client() as api:
            r = api.post(
                "/devices/cooler.1*x/messages",
                json={"data": {"cmd": "defrost"}, "properties": {"reason": "a/b"}},
            )
            assert r.status_code == 202, r.text
            c2d = device.messages.get(timeout=10)
            assert c2d.data == b'{"cmd":"defrost"}' and c2d.custom_properties["reason"] == "a/b"
            status = api.get("/devices/cooler.1*x/connectivity").json()
            assert status["connected"] is True and status["lastActivityAt"] is not None
            assert api.get("/devices/absent-1/connectivity").json()["connected"] is False
        started = time.monotonic()
        r = invoke(other, "absent-1", "reboot", None)
        assert r.status_code == 404 and r.json()["error"]["code"] == "DeviceNotOnline", r.text
        assert time.monotonic() - started < 3  # silence within the short presence timeout
    finally:
        device.client.shutdown()


def test_device_moved_between_processes_by_a_restart_keeps_working(cluster: Cluster) -> None:
    shared = cluster.hosts[0]  # both gateways on one address and port: SO_REUSEPORT
    first = cluster.server(shared, "gateway,api", reuse_port=True)
    second = cluster.server(shared, "gateway,api", reuse_port=True)
    start_all(first, second, cluster.server(cluster.hosts[2], "ingest"))
    device = SdkDevice(cluster, shared, "mover-1", create_device(first, "mover-1"))
    try:
        holder, other = (first, second) if devices_connected(first) else (second, first)
        assert devices_connected(holder) == 1 and devices_connected(other) == 0
        assert_reaches(other, device, 1)
        holder.stop()  # listeners close first: the SDK's reconnect lands on the other one
        assert wait_until(lambda: devices_connected(other) == 1, 20, 0.2)
        holder.start()
        assert devices_connected(holder) == 0
        assert_reaches(holder, device, 2)  # through the restarted process, held by the other
        assert_reaches(other, device, 3)  # and by the process now holding it
    finally:
        device.client.shutdown()


DEVICES = 40
LOAD_SECONDS = 4.0
KILL_AFTER = 1.5
PREFIX = "crash-"


def _stored_ids(cluster: Cluster) -> list[str]:
    engine = sa.create_engine(cluster.telemetry_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT message_id FROM messages WHERE starts_with(device_id, :p)"),
                {"p": PREFIX},
            ).fetchall()
    finally:
        engine.dispose()
    return [str(row[0]) for row in rows]


def test_kill9_of_a_gateway_process_under_load_loses_and_duplicates_nothing(
    cluster: Cluster,
) -> None:
    ids = tuple(f"{PREFIX}{i:03d}" for i in range(DEVICES))
    insert_devices(cluster.env["AISLEHUB_METADATA_DATABASE"], cluster.init["appId"], ids)
    victim = cluster.server(cluster.hosts[0], "gateway,api")
    survivor = cluster.server(cluster.hosts[1], "gateway,api,ingest")
    start_all(victim, survivor)
    target = Target(victim.host, victim.plain_port, Dialect(victim.host, cluster.group_key()))
    killer = threading.Timer(KILL_AFTER, victim.stop, args=(signal.SIGKILL,))
    spec = LoadSpec(target, ids, LOAD_SECONDS, 10, 1, record_ids=True, drain_timeout=1.0)
    try:
        result = run_load(spec, on_start=killer.start)
    finally:
        killer.cancel()
        if killer.is_alive():
            killer.join()
    assert victim.proc is None, "the gateway was not killed during the load"
    acked = set(result.acked_ids)
    assert len(acked) == result.acked > 300, f"too little load before the kill: {result.acked}"

    # The store writer lives in the surviving process: it stores what JetStream holds.
    assert wait_until(lambda: acked <= set(_stored_ids(cluster)), 30, 0.5), "acked ids lost"
    time.sleep(1.0)  # anything stored twice would arrive with or just after the rest
    stored = _stored_ids(cluster)
    assert len(stored) == len(set(stored)), "a message id was stored twice"
    assert invoke(survivor, ids[0], "ping", None).status_code == 404  # its link died with it


def test_rules_in_a_process_of_their_own(cluster: Cluster) -> None:
    """``--role rules`` alone: the engine reads the stream as its named reader, opens the
    alert, and its command action reaches the device through the process holding it."""
    from tests.e2e.test_rules import TEMPLATE, alerts, cooler_template, put_rule

    gateway = cluster.server(cluster.hosts[0], "gateway,ingest,api")
    rules = cluster.server(cluster.hosts[1], "rules")
    start_all(gateway, rules)
    with gateway.client() as api:
        assert api.put(f"/deviceTemplates/{TEMPLATE}", json=cooler_template()).status_code == 200
        assert api.put("/devices/cooler-r", json={"template": TEMPLATE}).status_code == 200
        key = api.get("/devices/cooler-r/credentials").json()["symmetricKey"]["primaryKey"]
    hot = {"type": "telemetry", "field": "temperature", "operator": ">", "value": 8}
    put_rule(gateway, "too-warm", [hot], actions=[{"type": "command", "name": "defrost"}])
    device = SdkDevice(cluster, cluster.hosts[0], "cooler-r", key)
    called: queue.Queue[str] = queue.Queue()

    def on_method(request: Any) -> None:
        called.put(request.name)
        device.client.send_method_response(
            MethodResponse.create_from_method_request(request, 200, {})
        )

    device.client.on_method_request_received = on_method
    try:
        time.sleep(1.0)  # the rule reaches the engine's process (it polls every 0.25 s)
        device.client.send_message(Message(json.dumps({"temperature": 12.5})))
        opened = wait_until(lambda: alerts(gateway, rule="too-warm"), timeout=20)
        assert opened[0]["device"] == "cooler-r" and opened[0]["state"] == "open"
        assert called.get(timeout=20) == "defrost"
    finally:
        device.client.shutdown()
