"""``kill -9`` under QoS 1 load loses no acknowledged message and stores none twice.

DESIGN.md §2 and §7: the gateway acknowledges a QoS 1 PUBLISH only after the ingest log has
fsynced it, and the store writer is idempotent on replay. So after a SIGKILL in the middle of
the load, a restart (which recovers the log's tail and replays it into the store) and a
clean stop, every message id the devices saw acknowledged must be in the store exactly once,
and no message id may be stored twice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from aislehub.bench.generator import LoadResult, LoadSpec, run_load
from aislehub.bench.server import BenchServer, pick_loopback

DEVICES = 50
LOAD_SECONDS = 4.0
KILL_AFTER = 1.5  # seconds into the load
PREFIX = "crash-"

pytestmark = pytest.mark.timeout(90)


def _load_and_kill(server: BenchServer) -> LoadResult:
    ids = tuple(f"{PREFIX}{i:03d}" for i in range(DEVICES))
    server.add_devices(ids)
    server.start()
    killer = threading.Timer(KILL_AFTER, server.stop, args=(signal.SIGKILL,))
    spec = LoadSpec(
        server.target(tls=True),
        ids,
        LOAD_SECONDS,
        window=10,
        processes=2,
        record_ids=True,
        drain_timeout=1.0,
    )
    try:
        return run_load(spec, on_start=killer.start)
    finally:
        killer.cancel()
        if killer.is_alive():
            killer.join()


def _stored(path: Path) -> tuple[Counter[str], int, int]:
    """Message ids (with multiplicity), rows without an id, and stored ``seq`` fields."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        ids = con.execute(
            "SELECT message_id FROM messages WHERE starts_with(device_id, ?)", [PREFIX]
        ).fetchall()
        seqs = con.execute(
            "SELECT count(*) FROM telemetry_num WHERE name = 'seq' AND starts_with(device_id, ?)",
            [PREFIX],
        ).fetchone()
    finally:
        con.close()
    counts = Counter(str(row[0]) for row in ids if row[0] is not None)
    return counts, sum(1 for row in ids if row[0] is None), int(seqs[0]) if seqs else 0


def test_kill9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    server = BenchServer.create(tmp_path / "install", pick_loopback(salt=os.getppid() % 97))
    result = _load_and_kill(server)
    assert server.proc is None, "the server was not killed during the load"
    acked = result.acked_ids
    assert len(acked) == result.acked and len(set(acked)) == len(acked)
    assert len(acked) > 500, f"too little load before the kill: {len(acked)} acked"
    assert result.lost_connections == result.connections, "connections outlived the kill"

    server.start()  # recovery: the log's tail is replayed into the store
    assert server.stop() == 0, server.tail_log()

    counts, without_id, seq_rows = _stored(server.telemetry_path)
    twice = {mid: n for mid, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} message ids stored more than once, e.g. {list(twice)[:5]}"
    assert without_id == 0
    missing = set(acked) - set(counts)
    assert not missing, (
        f"{len(missing)} of {len(acked)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
        f"\nserver log:\n{server.tail_log()}"
    )
    assert seq_rows == sum(counts.values()), "message rows and their telemetry disagree"
