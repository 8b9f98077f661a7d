"""Crash-test child: append records forever, print each offset once it is acknowledged.

Run as ``python crash_writer.py DIRECTORY``. A line ``<offset> <index>`` on stdout means
the append future resolved, i.e. what the gateway would turn into a PUBACK. The parent
kills this process with SIGKILL at a random moment and checks every printed offset.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from functools import partial
from pathlib import Path

from aislehub.ingest.local_log import LocalLog


def crash_record(index: int) -> bytes:
    """Deterministic, varied-length content for record ``index``."""
    digest = hashlib.sha256(b"%d" % index).digest()
    return b"%d:" % index + digest * (1 + index % 5)


async def main(directory: Path) -> None:
    # Small segments so that kills also land around segment rolls.
    log = LocalLog(directory, segment_bytes=256 * 1024, commit_interval=0.001)
    await log.start()
    index = log.durable_offset + 1  # continue numbering across crash rounds
    out = sys.stdout

    def acked(future: asyncio.Future[int], *, i: int) -> None:
        out.write(f"{future.result()} {i}\n")
        out.flush()

    print("ready", flush=True)
    while True:
        for _ in range(50):
            log.append(crash_record(index)).add_done_callback(partial(acked, i=index))
            index += 1
        await asyncio.sleep(0)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
