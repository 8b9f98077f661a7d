"""Where the local log's readers get durable records from: memory first, files second.

A consumer that keeps up reads what was committed a few milliseconds ago; the
:class:`Tail` keeps the newest committed batches in memory (bounded in bytes) so that
case costs no I/O. A consumer that fell behind, or replays after a restart, reads the
segment files through :func:`read_files`, which returns a :class:`FileCursor` so the next
sequential read continues where this one stopped instead of rescanning the segment.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from aislehub.ingest import segments
from aislehub.ingest.log import IngestLogError, OffsetTruncated

__all__ = ["FileCursor", "Tail", "read_files"]


@dataclass(frozen=True, slots=True)
class _Batch:
    first: int
    records: list[bytes]
    size: int


class Tail:
    """The most recently committed batches, at most ``max_bytes`` of records (plus one)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._batches: deque[_Batch] = deque()
        self._bytes = 0

    def add(self, first: int, records: list[bytes]) -> None:
        size = sum(map(len, records))
        self._batches.append(_Batch(first, records, size))
        self._bytes += size
        # Always keep the newest batch so a reader that keeps up never touches a file.
        while self._bytes > self.max_bytes and len(self._batches) > 1:
            self._bytes -= self._batches.popleft().size

    def read(self, after: int, max_records: int) -> list[tuple[int, bytes]] | None:
        """Records after ``after``, or None when they are older than the tail holds."""
        batches = self._batches
        if not batches or after + 1 < batches[0].first:
            return None
        i = len(batches) - 1
        while batches[i].first > after + 1:  # readers are usually near the end
            i -= 1
        out: list[tuple[int, bytes]] = []
        start = after + 1 - batches[i].first
        while i < len(batches) and len(out) < max_records:
            batch = batches[i]
            chunk = batch.records[start : start + max_records - len(out)]
            offsets = range(batch.first + start, batch.first + start + len(chunk))
            out += zip(offsets, chunk, strict=True)
            i, start = i + 1, 0
        return out


@dataclass(frozen=True, slots=True)
class FileCursor:
    """Where a sequential file read stopped: segment ``base``, byte ``pos``."""

    base: int
    pos: int
    next_offset: int


def read_files(
    directory: Path,
    bases: tuple[int, ...],
    active_size: int,
    last: int,
    after: int,
    cursor: FileCursor | None,
) -> tuple[list[tuple[int, bytes]], FileCursor | None]:
    """Worker thread: records ``after < offset <= last`` from the segment files.

    ``active_size`` is the durable size of the newest segment; older segments are
    durable to their end.
    """
    idx = segments.segment_for(bases, after + 1)
    if idx < 0:
        raise OffsetTruncated(f"offset {after + 1} is older than the oldest segment")
    if cursor is not None and cursor.base == bases[idx] and cursor.next_offset == after + 1:
        pos, next_offset = cursor.pos, cursor.next_offset
    else:
        pos, next_offset = 0, bases[idx]
    out: list[tuple[int, bytes]] = []
    while True:
        path = segments.segment_path(directory, bases[idx])
        newest = idx == len(bases) - 1
        try:
            limit = active_size if newest else os.stat(path).st_size
            wanted = last - after - len(out)
            got = segments.read_segment(path, pos, next_offset, after, wanted, limit)
        except FileNotFoundError:
            raise OffsetTruncated(f"segment {path.name} was deleted by retention") from None
        out += got.records
        pos, next_offset = got.pos, got.next_offset
        if pos < limit or newest or after + len(out) >= last:
            return out, FileCursor(bases[idx], pos, next_offset) if out else None
        idx += 1
        if next_offset != bases[idx]:
            raise IngestLogError(f"{path.name} ends at {next_offset}, next starts at {bases[idx]}")
        pos = 0
