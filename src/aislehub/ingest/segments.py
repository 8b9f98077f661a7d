"""On-disk format of the local ingest log: segment files of CRC-framed records.

A segment is named by the offset of its first record (``00000000000000000042.seg``) and
holds frames back to back::

    crc32 u32 | length u32 | offset u64 | record (length bytes)

The CRC covers ``length | offset | record``, so a torn write, garbage after the tail or
a frame written at the wrong place all fail the check. Everything here is blocking file
I/O meant to run in a worker thread; nothing touches the event loop.
"""

from __future__ import annotations

import os
import struct
import zlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from aislehub.ingest.log import IngestLogError, IngestLogFailed

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FRAME_HEADER",
    "MAX_RECORD_BYTES",
    "Parsed",
    "Stop",
    "create_segment",
    "frame_batch",
    "list_segments",
    "lock_directory",
    "parse_frames",
    "read_segment",
    "recover_segment",
    "segment_for",
    "segment_path",
    "sync",
    "write_all",
]

_CRC = struct.Struct("<I")
_LEN_OFFSET = struct.Struct("<IQ")
FRAME_HEADER = _CRC.size + _LEN_OFFSET.size
# Device messages are capped at 256 KiB (DESIGN §7); a length far above that in a header
# can only be corruption, and refusing it keeps recovery from allocating gigabytes.
MAX_RECORD_BYTES = 16 * 1024 * 1024
SUFFIX = ".seg"
# Replay reads this much at a time: large enough to amortize the syscall, small enough
# that a consumer asking for one batch does not pull a whole 64 MiB segment into memory.
_READ_CHUNK = 1024 * 1024


def _full_fsync(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_FULLFSYNC)  # type: ignore[attr-defined]


# fdatasync persists the data and the file size (what a reader needs) without the
# mtime update: the same guarantee as fsync for an append-only file, for less I/O. macOS
# has no fdatasync, and its fsync does not flush the drive's cache; F_FULLFSYNC does.
# A module global so tests can inject a failing or slow sync.
sync: Callable[[int], None]
if hasattr(os, "fdatasync"):
    sync = os.fdatasync
elif fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):
    sync = _full_fsync
else:
    sync = os.fsync


class Stop(Enum):
    """Why :func:`parse_frames` stopped."""

    END = "end"  # consumed the whole buffer
    PARTIAL = "partial"  # the buffer ends inside a frame (need more bytes, or a torn tail)
    CORRUPT = "corrupt"  # a frame failed its CRC, length or offset check
    FULL = "full"  # returned max_records


@dataclass(frozen=True, slots=True)
class Parsed:
    records: list[tuple[int, bytes]]
    pos: int  # buffer position just after the last accepted frame
    next_offset: int  # offset the next frame must carry
    stop: Stop


def segment_path(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the segments in ``directory``, ascending."""
    return sorted(int(p.stem) for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def segment_for(bases: Sequence[int], offset: int) -> int:
    """Index in ``bases`` of the segment that holds ``offset``, or -1 if it is older."""
    return bisect_right(bases, offset) - 1


def frame_batch(records: Sequence[bytes], first_offset: int) -> bytes:
    """Frame ``records`` with consecutive offsets from ``first_offset``, as one buffer."""
    parts: list[bytes] = []
    pack_lo, pack_crc, crc32 = _LEN_OFFSET.pack, _CRC.pack, zlib.crc32
    for offset, record in enumerate(records, first_offset):
        lo = pack_lo(len(record), offset)
        parts.append(pack_crc(crc32(record, crc32(lo))) + lo)
        parts.append(record)
    return b"".join(parts)


def parse_frames(
    buf: bytes,
    pos: int,
    next_offset: int,
    after: int = -1,
    max_records: int = 1 << 62,
    verify_skipped: bool = False,
) -> Parsed:
    """Parse frames from ``buf[pos:]`` expecting ``next_offset`` first.

    Frames with offset <= ``after`` are stepped over; unless ``verify_skipped``, without
    a CRC check, since a reader that skips them only needs their length.
    """
    out: list[tuple[int, bytes]] = []
    end, crc32 = len(buf), zlib.crc32
    unpack_lo, unpack_crc = _LEN_OFFSET.unpack_from, _CRC.unpack_from
    while pos < end:
        if end - pos < FRAME_HEADER:
            return Parsed(out, pos, next_offset, Stop.PARTIAL)
        length, offset = unpack_lo(buf, pos + 4)
        if offset != next_offset or length > MAX_RECORD_BYTES:
            return Parsed(out, pos, next_offset, Stop.CORRUPT)
        start = pos + FRAME_HEADER
        if start + length > end:
            return Parsed(out, pos, next_offset, Stop.PARTIAL)
        keep = offset > after
        if keep or verify_skipped:
            record = buf[start : start + length]
            if crc32(record, crc32(buf[pos + 4 : start])) != unpack_crc(buf, pos)[0]:
                return Parsed(out, pos, next_offset, Stop.CORRUPT)
            if keep:
                out.append((offset, record))
        pos, next_offset = start + length, next_offset + 1
        if len(out) >= max_records:
            return Parsed(out, pos, next_offset, Stop.FULL)
    return Parsed(out, pos, next_offset, Stop.END)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(directory: Path) -> None:
    """Make a created or renamed directory entry durable (a new file's data is not enough)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_directory(directory: Path) -> int:
    """Take an exclusive lock on the log directory; two writers would interleave frames.

    The lock is an ``flock`` on ``LOCK``, released by closing the returned descriptor or
    by the process dying (so a ``kill -9`` never leaves a stale lock behind).
    """
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # Windows: no flock; a single-process deployment is assumed there
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise IngestLogFailed(f"{directory} is in use by another process") from None
    return fd


def create_segment(directory: Path, base: int) -> int:
    """Create an empty segment and make its name durable; return a write descriptor."""
    fd = os.open(segment_path(directory, base), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fsync_directory(directory)
    return fd


def recover_segment(directory: Path, base: int) -> tuple[int, int]:
    """Cut a torn or corrupt tail off a segment; return (valid size, next offset).

    Only the newest segment can have a bad tail: a segment is fsynced before the next
    one is created. Anything after the first bad frame was never acknowledged.
    """
    path = segment_path(directory, base)
    buf = path.read_bytes()
    parsed = parse_frames(buf, 0, base, after=1 << 62, verify_skipped=True)
    if parsed.stop is not Stop.END:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, parsed.pos)
            os.fsync(fd)
        finally:
            os.close(fd)
    return parsed.pos, parsed.next_offset


def read_segment(
    path: Path, pos: int, next_offset: int, after: int, max_records: int, limit: int
) -> Parsed:
    """Read frames of a segment from byte ``pos`` up to byte ``limit``, chunk by chunk.

    ``limit`` is the durable size of the segment, so bytes being written right now are
    never looked at; a bad or incomplete frame inside that range is corruption.
    """
    records: list[tuple[int, bytes]] = []
    chunk = _READ_CHUNK
    with path.open("rb") as f:
        while pos < limit and len(records) < max_records:
            f.seek(pos)
            buf = f.read(min(chunk, limit - pos))
            got = parse_frames(buf, 0, next_offset, after, max_records - len(records))
            records += got.records
            partial_at_limit = got.stop is Stop.PARTIAL and pos + len(buf) >= limit
            if got.stop is Stop.CORRUPT or partial_at_limit or len(buf) == 0:
                raise IngestLogError(f"corrupt frame in {path.name} at byte {pos + got.pos}")
            # A frame larger than the chunk: read a bigger one next time round.
            chunk = chunk * 2 if got.pos == 0 else _READ_CHUNK
            pos, next_offset = pos + got.pos, got.next_offset
    return Parsed(records, pos, next_offset, Stop.FULL if pos < limit else Stop.END)
