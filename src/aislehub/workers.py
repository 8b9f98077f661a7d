"""``aislehub serve --workers N``: a supervisor of N server processes sharing the ports.

Each worker is an ordinary ``aislehub serve`` process (:func:`aislehub.runtime.run`) bound
with SO_REUSEPORT, so the kernel spreads device connections and API requests over them;
device-bound operations reach a device in whichever worker holds it through NATS
(:mod:`aislehub.hub.nats_routing`). Only the scale-out engines can be shared this way: a
DuckDB file and the local log belong to one process, so ``--workers`` above 1 needs
PostgreSQL and NATS (:func:`refusal`).

Roles: worker 0 runs every role asked for; the others leave out the single-consumer roles
(the store writer: one telemetry consumer per deployment), so N workers with the default
roles are N gateways and APIs and one store writer.

The supervisor prints one ``ready`` line once every worker printed its own, forwards
SIGTERM and SIGINT to them and exits when they have all exited (status 0 if they all did
cleanly). A worker that dies while the supervisor is not stopping (a crash, ``kill -9``)
is started again after :data:`RESTART_PAUSE`, with the same roles.

Settings reach the workers as ``AISLEHUB_*`` variables (which beat the TOML file), so a
worker runs with exactly the supervisor's settings, command-line flags included.
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from aislehub.settings import ROLES, Settings

__all__ = ["SINGLE_ROLES", "refusal", "supervise", "worker_roles"]

SINGLE_ROLES = frozenset({"ingest", "rules"})  # one process per deployment runs these
READY_TIMEOUT = 120.0  # seconds for a worker to print "ready" (migrations, stream creation)
RESTART_PAUSE = 1.0  # seconds before a crashed worker is started again
POLL = 0.2


def refusal(settings: Settings) -> str | None:
    """Why ``settings`` cannot run several workers; None when they can."""
    if not settings.scale_out and settings.role_set != frozenset(ROLES):
        return (
            "--role needs the scale-out engines: on the embedded ones (local log, DuckDB, "
            "SQLite) one process runs every role. Set metadata_database, telemetry_database "
            "and nats_url (docs/operations-scale-out.md)."
        )
    if settings.workers <= 1 or settings.scale_out:
        return None
    return (
        f"--workers {settings.workers} needs the scale-out engines: a DuckDB file, the local "
        "log and a SQLite file belong to one process. Set metadata_database (PostgreSQL), "
        "telemetry_database (PostgreSQL) and nats_url (NATS JetStream): flags "
        "--metadata-database, --telemetry-database, --nats or AISLEHUB_* variables "
        "(docs/operations-scale-out.md)."
    )


def worker_roles(roles: frozenset[str], index: int) -> frozenset[str]:
    """Worker 0 runs ``roles``; the others all but :data:`SINGLE_ROLES`."""
    return roles if index == 0 else roles - SINGLE_ROLES


def worker_env(settings: Settings, roles: frozenset[str]) -> dict[str, str]:
    """The ``AISLEHUB_*`` variables that give a worker ``settings`` with ``roles``."""
    env = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if f.name in {"extra", "data_dir"} or value is None:
            continue
        env[f"AISLEHUB_{f.name.upper()}"] = (
            str(int(value)) if isinstance(value, bool) else str(value)
        )
    env["AISLEHUB_WORKERS"] = "1"
    env["AISLEHUB_REUSE_PORT"] = "1"
    env["AISLEHUB_ROLES"] = ",".join(sorted(roles))
    return env


@dataclass
class _Worker:
    index: int
    roles: frozenset[str]
    proc: subprocess.Popen[bytes] | None = None
    ready_line: str = ""
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        roles = settings.role_set
        self.workers = [_Worker(i, worker_roles(roles, i)) for i in range(settings.workers)]
        self.stopping = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for worker in self.workers:
            self._spawn(worker)
        if not self._wait_ready():
            self._signal_all(signal.SIGTERM)
            self._join(30.0)
            return 1
        first = self.workers[0].ready_line.removeprefix("ready:").strip()
        print(f"ready: {len(self.workers)} workers; {first}", flush=True)
        return self._watch()

    def _spawn(self, worker: _Worker) -> None:
        env = {**os.environ, **worker_env(self.settings, worker.roles)}
        args = [
            sys.executable,
            "-m",
            "aislehub.cli",
            "serve",
            "--data-dir",
            str(self.settings.data_dir),
        ]
        worker.proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
        worker.started_at = time.monotonic()

    def _wait_ready(self) -> bool:
        """Read each worker's first line; False if one exits or stays silent too long."""
        deadline = time.monotonic() + READY_TIMEOUT
        with selectors.DefaultSelector() as sel:
            for w in self.workers:
                assert w.proc is not None and w.proc.stdout is not None
                sel.register(w.proc.stdout, selectors.EVENT_READ, w)
            waiting = len(self.workers)
            while waiting and not self.stopping and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=POLL):
                    worker: _Worker = key.data
                    worker.ready_line = key.fileobj.readline().decode(errors="replace")  # type: ignore[union-attr]
                    sel.unregister(key.fileobj)
                    if not worker.ready_line.startswith("ready"):
                        print(f"aislehub: worker {worker.index} did not start", file=sys.stderr)
                        return False
                    waiting -= 1
        return waiting == 0 and not self.stopping

    def _watch(self) -> int:
        """Until every worker has exited after a stop; restart those that die before."""
        while True:
            alive = 0
            for worker in self.workers:
                proc = worker.proc
                if proc is None or proc.poll() is None:
                    alive += proc is not None
                    continue
                if self.stopping:
                    continue
                print(
                    f"aislehub: worker {worker.index} exited with {proc.returncode}; "
                    f"restarting it in {RESTART_PAUSE:g} s",
                    file=sys.stderr,
                    flush=True,
                )
                self._close(worker)
                time.sleep(RESTART_PAUSE)
                if not self.stopping:
                    self._spawn(worker)
                    alive += 1
            if self.stopping and alive == 0:
                break
            time.sleep(POLL)
        codes = [w.proc.returncode for w in self.workers if w.proc is not None]
        for worker in self.workers:
            self._close(worker)
        return 0 if all(code == 0 for code in codes) else 1

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signal_all(signum)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signum)

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            self._close(worker)

    @staticmethod
    def _close(worker: _Worker) -> None:
        if worker.proc is not None and worker.proc.stdout is not None:
            worker.proc.stdout.close()


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until SIGTERM/SIGINT; the exit status."""
    return Supervisor(settings).run()
