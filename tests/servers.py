"""Run a real aislehub server process for end-to-end tests.

Each server gets its own loopback address (127.0.0.x) because the IoT Hub SDK always
dials port 8883 (443 for WebSockets): tests cannot move the port, only the address.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API_VERSION = "2022-07-31"
_hosts = itertools.count(10 + (os.getpid() % 20) * 10)


_PORTS = random.Random(os.getpid())


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, below the kernel's ephemeral range (32768+ on Linux).

    The kernel's own pick (bind to port 0) comes from the ephemeral range, where any
    outgoing connection may take it before the server under test binds it.
    """
    for _ in range(200):
        port = _PORTS.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} in 20000-32767")


def next_loopback() -> str:
    return f"127.0.{next(_hosts) % 250}.{(os.getpid() % 200) + 2}"


def aislehub(*args: str) -> list[str]:
    return [sys.executable, "-m", "aislehub.cli", *args]


@dataclass
class Server:
    host: str
    data_dir: Path
    http_port: int
    plain_port: int
    init: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.http_port}/api"

    @property
    def token(self) -> str:
        return str(self.init["apiToken"])

    @property
    def id_scope(self) -> str:
        return str(self.init["idScope"])

    @property
    def ca_pem(self) -> str:
        return Path(self.init["caCertPath"]).read_text()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api,
            headers={"Authorization": self.token},
            params={"api-version": API_VERSION},
            timeout=60,
        )

    def metric(self, name: str) -> float:
        """``aislehub_<name>`` on the server's ``/metrics``, summed over its labels (0 when
        it is not there)."""
        text = httpx.get(f"http://{self.host}:{self.http_port}/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.split("{", 1)[0].split(" ", 1)[0] == f"aislehub_{name}"
        )

    def start(self) -> None:
        with (self.data_dir / "server.log").open("ab") as log:
            self.proc = self._spawn(log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not start: {line!r}; see {self.data_dir}/server.log")

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            aislehub(
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--bind",
                self.host,
                "--http-port",
                str(self.http_port),
                "--plain-mqtt-port",
                str(self.plain_port),
            ),
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(self.env or {})},
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def init_server(tmp: Path) -> Server:
    host = next_loopback()
    data_dir = tmp / "install"
    out = subprocess.run(
        aislehub("init", "--data-dir", str(data_dir), "--hostname", host),
        check=True,
        capture_output=True,
        timeout=60,
    )
    init = json.loads(out.stdout)
    return Server(host, data_dir, free_port(host), free_port(host), init)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
