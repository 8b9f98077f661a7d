"""An aislehub install and ``aislehub serve`` process made for one benchmark or crash test.

Devices are written straight into the metadata store in one transaction before the server
starts: creating thousands through the API would time the API, not ingest. They carry no
individual attestation, so they authenticate with keys derived from the install's default
enrollment group (contract §3.1), exactly like DPS-provisioned devices.

On the scale-out engines (``env`` naming PostgreSQL and NATS, :func:`scale_env`) the
metadata store is the PostgreSQL database, and ``workers`` > 1 runs ``serve --workers``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from aislehub.bench.wire import Dialect, Target
from aislehub.hub.auth import DEFAULT_GROUP
from aislehub.install import Install, initialize
from aislehub.store.metadata import Device, MetadataStore
from aislehub.store.rows import utcnow
from aislehub.store.schema import devices as devices_table

__all__ = ["BenchServer", "free_port", "insert_devices", "pick_loopback", "scale_env"]


def pick_loopback(salt: int = 0) -> str:
    """A 127.0.0.0/8 address unlikely to be used by a concurrent run (never 127.0.0.1)."""
    pid = os.getpid() + salt
    return f"127.{90 + (pid >> 16) % 100}.{(pid >> 8) % 250 + 1}.{pid % 250 + 2}"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def scale_env(metadata_url: str, telemetry_url: str, nats_url: str, stream: str) -> dict[str, str]:
    """The ``AISLEHUB_*`` variables that put a server on PostgreSQL and NATS."""
    return {
        "AISLEHUB_METADATA_DATABASE": metadata_url,
        "AISLEHUB_TELEMETRY_DATABASE": telemetry_url,
        "AISLEHUB_NATS_URL": nats_url,
        "AISLEHUB_NATS_STREAM": stream,
    }


def insert_devices(metadata_url: str, app_id: str, device_ids: Sequence[str]) -> None:
    """Register devices in one transaction, straight into the metadata store."""
    store = MetadataStore(metadata_url)
    try:
        columns = {c.name for c in devices_table.columns}
        rows = [
            {k: v for k, v in asdict(Device(app_id, d, d)).items() if k in columns}
            for d in device_ids
        ]
        with store.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                conn.execute(sa.insert(devices_table), rows[start : start + 5000])
    finally:
        store.close()


@dataclass
class BenchServer:
    """One install in ``data_dir`` and, while started, its server process."""

    data_dir: Path
    host: str
    install: Install
    api_token: str
    mqtt_port: int = 0
    plain_port: int = 0
    http_port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] = field(default_factory=dict)  # AISLEHUB_* for the server
    workers: int = 1

    @classmethod
    def create(
        cls, data_dir: Path, host: str, env: dict[str, str] | None = None, workers: int = 1
    ) -> BenchServer:
        env = env or {}
        metadata_url = env.get("AISLEHUB_METADATA_DATABASE")
        install, token = initialize(data_dir, [host], [], metadata_url=metadata_url)
        ports = free_port(host), free_port(host), free_port(host)
        return cls(data_dir, host, install, token, *ports, env=env, workers=workers)

    @property
    def metadata_url(self) -> str:
        default = f"sqlite:///{self.data_dir / 'metadata.sqlite'}"
        return self.env.get("AISLEHUB_METADATA_DATABASE", default)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def telemetry_path(self) -> Path:
        return self.data_dir / "telemetry.duckdb"

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    # -- devices -------------------------------------------------------------------------
    def add_devices(self, device_ids: Sequence[str]) -> None:
        """Register devices in one transaction (the server must not be running)."""
        insert_devices(self.metadata_url, self.install.app_id, device_ids)

    def assign_template(self, prefix: str, template_id: str) -> None:
        """Give every device whose id starts with ``prefix`` the template, in one UPDATE."""
        store = MetadataStore(self.metadata_url)
        d = devices_table.c
        try:
            with store.engine.begin() as conn:
                conn.execute(
                    sa.update(devices_table)
                    .where((d.app_id == self.install.app_id) & d.id.startswith(prefix))
                    .values(template=template_id, last_updated_at=utcnow())
                )
        finally:
            store.close()

    def group_key(self) -> str:
        store = MetadataStore(self.metadata_url)
        try:
            group = store.get_group(self.install.app_id, DEFAULT_GROUP)
        finally:
            store.close()
        if group is None:
            raise RuntimeError(f"the install has no {DEFAULT_GROUP!r} enrollment group")
        return str(group.attestation["symmetricKey"]["primaryKey"])

    def target(self, tls: bool) -> Target:
        dialect = Dialect(hub_host=self.install.hostname, group_key=self.group_key())
        if tls:
            return Target(self.host, self.mqtt_port, dialect, self.install.ca_cert_path)
        return Target(self.host, self.plain_port, dialect)

    # -- process -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        args = [
            sys.executable,
            "-m",
            "aislehub.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--bind",
            self.host,
            "--mqtt-port",
            str(self.mqtt_port),
            "--ws-port",
            "0",
            "--http-port",
            str(self.http_port),
            "--plain-mqtt-port",
            str(self.plain_port),
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env)
        line = _read_line(self.proc, timeout)
        if not line.startswith("ready"):
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
            raise RuntimeError(f"aislehub serve did not start ({line!r}); log:\n{self.tail_log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it; returns its exit status."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise RuntimeError(
                f"aislehub serve ignored signal {sig} for {timeout:.0f} s; log:\n{self.tail_log()}"
            ) from None
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def peak_rss_mb(self) -> float:
        """The server's peak resident set (``VmHWM``), in MiB, summed over its workers when
        it supervises some; 0 when it is not running."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return sum(_peak_rss_kib(pid) for pid in pids) / 1024

    def tail_log(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line, or "" if the process exits or stays silent past ``timeout``."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                return proc.stdout.readline().decode(errors="replace")
            if proc.poll() is not None:
                return ""
    return ""
