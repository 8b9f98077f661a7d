"""kill -9 under load: every acknowledged record survives with its exact bytes (DESIGN §7).

A killed process leaves the kernel's page cache intact, so this proves "acknowledge only
after the write" and that recovery keeps every complete frame. "After the fsync" (power
loss) cannot be simulated here; ``test_reads_see_only_durable_records`` and
``test_failed_fsync_stops_acknowledging`` pin down that acks wait for the fsync.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from aislehub.ingest.local_log import LocalLog
from tests.ingest.crash_writer import crash_record

WRITER = Path(__file__).with_name("crash_writer.py")


def _run_and_kill(directory: Path, acks_before_kill: int) -> list[tuple[int, int]]:
    """Start the writer, SIGKILL it after some acks; return every (offset, index) it acked."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, str(WRITER), str(directory)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        lines: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(lines) < acks_before_kill and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        lines += proc.stdout.read().splitlines(keepends=True)  # printed before the kill
    # Each ack is one write(2) of a short line, so the pipe delivers it whole; still, only
    # a line with its newline is taken as an ack.
    acked = [line.split() for line in lines if line.endswith(b"\n")]
    return [(int(o), int(i)) for o, i in acked]


async def _read_back(directory: Path) -> dict[int, bytes]:
    log = LocalLog(directory)
    await log.start()
    found: dict[int, bytes] = {}
    after = -1
    while batch := await log.read(after, 5000, timeout=0):
        found.update(batch)
        after = batch[-1][0]
    await log.close()
    return found


def test_acknowledged_records_survive_kill_9(tmp_path: Path) -> None:
    rng = random.Random(7)
    total_acked = 0
    for _round in range(3):  # later rounds recover the torn tail the previous one left
        acked = _run_and_kill(tmp_path, acks_before_kill=rng.randrange(2_000, 20_000))
        assert acked, "the writer acknowledged nothing before being killed"
        found = asyncio.run(_read_back(tmp_path))
        assert sorted(found) == list(range(len(found)))  # dense offsets
        for offset, index in acked:
            assert offset == index
            assert found.get(offset) == crash_record(index), f"acked offset {offset} lost"
        total_acked += len(acked)
    assert total_acked > 6_000
