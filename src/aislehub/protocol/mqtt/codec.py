"""MQTT 3.1.1 codec: bytes to :mod:`.packets` and back, no I/O.

Decoding checks, in order and as early as the bytes allow:

1. the first byte: packet type not reserved, fixed-header flags as required
   [MQTT-2.2.2-1/2] (so garbage fails on its first byte);
2. the Remaining Length: at most four bytes [MQTT-2.2.3], at most the caller's limit
   (:class:`PacketTooLarge` before the body has arrived);
3. the body, once complete, by the type's reader in :mod:`._readers`.

A proper prefix of a valid packet always raises :class:`NeedMoreData`; any other input
raises :class:`MalformedPacket` or :class:`PacketTooLarge`. Nothing else escapes.
"""

from __future__ import annotations

from aislehub.errors import MalformedPacket, NeedMoreData, PacketTooLarge

from ._primitives import decode_varint
from ._readers import READERS
from ._writers import encode_packet, encode_puback, encode_publish
from .packets import Packet

__all__ = [
    "decode_packet",
    "decode_packet_at",
    "encode_packet",
    "encode_puback",
    "encode_publish",
]


def decode_packet(
    buf: bytes | bytearray | memoryview, max_remaining_length: int
) -> tuple[Packet, int]:
    """Decode the packet at the start of ``buf``; return it and the bytes it used."""
    return decode_packet_at(memoryview(buf), 0, max_remaining_length)


def decode_packet_at(view: memoryview, pos: int, max_remaining_length: int) -> tuple[Packet, int]:
    """Decode the packet starting at ``view[pos]``; return it and the offset after it.

    The session uses this to walk a receive buffer without slicing it per packet.
    """
    end = len(view)
    if pos >= end:
        raise NeedMoreData("no bytes")
    first_byte = view[pos]
    reader = READERS[first_byte >> 4]
    if reader is None:
        raise MalformedPacket(f"reserved packet type {first_byte >> 4} (section 2.2.1)")
    name, required_flags, read = reader
    flags = first_byte & 0x0F
    if flags != required_flags and required_flags is not None:
        raise MalformedPacket(
            f"{name}: fixed-header flags {flags:#06b}, must be {required_flags:#06b}"
            " [MQTT-2.2.2-1] [MQTT-2.2.2-2]"
        )
    # Remaining Length: the one- and two-byte forms (packets under 16 KiB) inline.
    if pos + 2 < end and (length := view[pos + 1]) < 0x80:
        start = pos + 2
    elif pos + 2 < end and (second := view[pos + 2]) < 0x80:
        length, start = (view[pos + 1] & 0x7F) | (second << 7), pos + 3
    else:
        length, start = decode_varint(view, pos + 1)
    if length > max_remaining_length:
        raise PacketTooLarge(
            f"{name}: remaining length {length} over the limit {max_remaining_length}"
        )
    stop = start + length
    if stop > end:
        raise NeedMoreData(f"{name}: {stop - end} more bytes needed")
    try:
        return read(flags, view[start:stop]), stop
    except NeedMoreData:
        raise MalformedPacket(f"{name}: a field runs past the remaining length {length}") from None
