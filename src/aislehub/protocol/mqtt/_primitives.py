"""MQTT 3.1.1 data representations (spec section 1.5 and 2.2.3) as pure functions.

Decoders take a ``memoryview`` and a position and return ``(value, new_position)``. They
raise :class:`NeedMoreData` when the view ends inside the value; the packet decoder turns
that into :class:`MalformedPacket` when the view is a complete packet body, where running
out of bytes means the packet lies about its own length.

Encoders take Python values and return ``bytes``; they raise :class:`ValueError` for a
value the wire format cannot carry (that is our bug, not the peer's).
"""

from __future__ import annotations

import struct

from aislehub.errors import MalformedPacket, NeedMoreData

__all__ = [
    "MAX_REMAINING_LENGTH",
    "check_utf8",
    "decode_binary",
    "decode_uint16",
    "decode_utf8",
    "decode_varint",
    "encode_binary",
    "encode_uint16",
    "encode_utf8",
    "encode_varint",
]

#: The largest value four Remaining Length bytes can carry [MQTT-2.2.3].
MAX_REMAINING_LENGTH = 268_435_455

_U16 = struct.Struct(">H")


def encode_uint16(value: int) -> bytes:
    """Two bytes, big-endian (section 1.5.2)."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit in 16 bits")
    return _U16.pack(value)


def decode_uint16(buf: memoryview, pos: int) -> tuple[int, int]:
    if pos + 2 > len(buf):
        raise NeedMoreData("16-bit integer cut short")
    return (buf[pos] << 8) | buf[pos + 1], pos + 2


def encode_binary(data: bytes) -> bytes:
    """A 16-bit length followed by the bytes (section 1.5.3 framing, used for passwords)."""
    return encode_uint16(len(data)) + data


def decode_binary(buf: memoryview, pos: int) -> tuple[bytes, int]:
    length, pos = decode_uint16(buf, pos)
    end = pos + length
    if end > len(buf):
        raise NeedMoreData("length-prefixed field cut short")
    return bytes(buf[pos:end]), end


def encode_utf8(text: str) -> bytes:
    """A UTF-8 encoded string with its 16-bit length prefix (section 1.5.3)."""
    if "\x00" in text:
        raise ValueError("U+0000 is not allowed in MQTT strings [MQTT-1.5.3-2]")
    return encode_binary(text.encode("utf-8"))


def decode_utf8(buf: memoryview, pos: int) -> tuple[str, int]:
    length, pos = decode_uint16(buf, pos)
    end = pos + length
    if end > len(buf):
        raise NeedMoreData("string cut short")
    return check_utf8(buf[pos:end]), end


def check_utf8(raw: memoryview) -> str:
    """Decode well-formed UTF-8 without U+0000.

    Python's decoder is strict: it rejects overlong forms, surrogates U+D800..U+DFFF and
    code points above U+10FFFF, which is exactly [MQTT-1.5.3-1].
    """
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"ill-formed UTF-8 string [MQTT-1.5.3-1]: {exc.reason}") from None
    if "\x00" in text:
        raise MalformedPacket("string contains U+0000 [MQTT-1.5.3-2]")
    return text


def encode_varint(value: int) -> bytes:
    """The Remaining Length encoding: 7 bits per byte, high bit = more follows [MQTT-2.2.3]."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {value} outside 0..{MAX_REMAINING_LENGTH}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a Remaining Length; more than four bytes is malformed [MQTT-2.2.3].

    Non-minimal encodings (``0x80 0x00``) are accepted: 3.1.1 does not forbid them.
    """
    value = 0
    end = len(buf)
    for shift in (0, 7, 14, 21):
        if pos >= end:
            raise NeedMoreData("remaining length cut short")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise MalformedPacket("remaining length longer than four bytes [MQTT-2.2.3]")
