"""Record batches in JetStream messages, and the offsets of the records in them (no I/O).

The scale-out log appends what a gateway queued during one turn of its event loop as one
JetStream message per tenant: one PUB, one PubAck and one delivery per reader for many
records instead of one each, which is most of what a record costs in the client and the
server. A message's payload is a batch::

    0xB1 | count u32 | (len u32 | record) * count      (little-endian)

A payload without the leading 0xB1 byte is one record by itself (a stream written before
batching; the records of ``ingest/record.py`` start with their version byte, 1).

Offsets stay increasing integers in append order, built from the message's stream
sequence and the record's place in it: ``sequence << 16 | index``, where the *last*
record of a message takes index ``0xFFFF``. So an offset tells whether it ends its message,
and a reader resuming after it knows where to start without having seen the message:
after an offset that ends message ``s`` comes message ``s + 1``; after any other, the rest
of ``s``. ``(after + 1) >> 16`` is that first message in both cases (and 0 before the
first record, offset -1). Offsets are not dense: the number of records between two of
them is known only by reading.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = [
    "MAX_RECORDS",
    "BatchError",
    "frame",
    "last_offset",
    "message_of",
    "offsets",
    "unframe",
]

_MAGIC = 0xB1
_COUNT = struct.Struct("<BI")
_LEN = struct.Struct("<I")
_LAST = 0xFFFF
MAX_RECORDS = _LAST  # indices 0 .. 0xFFFE, the last one written as 0xFFFF
OVERHEAD = _COUNT.size  # bytes of a batch besides its records' (and _LEN.size per record)


class BatchError(ValueError):
    """A payload that claims to be a batch but does not add up."""


def frame(records: Sequence[bytes]) -> bytes:
    """One message payload holding ``records`` (1 ≤ count ≤ :data:`MAX_RECORDS`)."""
    if not 0 < len(records) <= MAX_RECORDS:
        raise ValueError(f"a batch holds 1 to {MAX_RECORDS} records, not {len(records)}")
    pack = _LEN.pack
    parts = [_COUNT.pack(_MAGIC, len(records))]
    for record in records:
        parts.append(pack(len(record)))
        parts.append(record)
    return b"".join(parts)


def unframe(payload: bytes) -> list[bytes]:
    """The records of one message payload, in order."""
    if not payload or payload[0] != _MAGIC:
        return [payload]
    if len(payload) < _COUNT.size:
        raise BatchError("batch shorter than its header")
    count = _COUNT.unpack_from(payload)[1]
    if not 0 < count <= MAX_RECORDS:
        raise BatchError(f"batch claims {count} records")
    out = []
    at = _COUNT.size
    unpack = _LEN.unpack_from
    end = len(payload)
    try:
        for _ in range(count):
            (size,) = unpack(payload, at)
            at += 4
            if at + size > end:
                raise BatchError("batch record runs past the payload")
            out.append(payload[at : at + size])
            at += size
    except struct.error as exc:
        raise BatchError("batch ends inside a record length") from exc
    if at != end:
        raise BatchError(f"{end - at} bytes after the batch's last record")
    return out


def offsets(sequence: int, count: int) -> list[int]:
    """The offsets of the ``count`` records of message ``sequence``."""
    base = sequence << 16
    return [*range(base, base + count - 1), base | _LAST]


def last_offset(sequence: int) -> int:
    """The offset ending message ``sequence`` (-1 for "before the first message")."""
    return (sequence << 16) | _LAST if sequence > 0 else -1


def message_of(after: int) -> int:
    """The stream sequence of the message holding the first record after offset ``after``
    (that message may also hold records at or before ``after``; skip them)."""
    return max((after + 1) >> 16, 1)
