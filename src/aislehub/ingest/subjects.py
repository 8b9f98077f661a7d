"""Subject tokens for a record's tenant and device: ``<app>.<device>[.<module>]``.

A NATS subject is dot-separated tokens; ``*`` and ``>`` are wildcards and whitespace ends
it, while IoT Hub ids may hold ``. * ? ! ( ) , : = @ $ ' %``. Each id is therefore written
as one token in which every byte outside ``[A-Za-z0-9_-]`` becomes ``~XX`` (its hex), so
``a.b`` and ``a~2Eb`` stay apart and :func:`decode_token` gives the id back. Plain ids,
the common case, are their own token.
"""

from __future__ import annotations

import re

__all__ = ["decode_token", "device_subject", "encode_token"]

_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPE = re.compile(r"~([0-9A-F]{2})")


def encode_token(value: str) -> str:
    """``value`` as one subject token (never empty, never a wildcard)."""
    if _PLAIN.fullmatch(value):
        return value
    out = []
    for char in value:
        if _PLAIN.fullmatch(char):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode())
    return "".join(out) or "~"  # the empty id (a device's own module slot) as a lone "~"


def decode_token(token: str) -> str:
    if token == "~":
        return ""
    parts = _ESCAPE.split(token)  # plain text, hex, plain text, hex, ...
    raw = b"".join(bytes.fromhex(p) if i % 2 else p.encode() for i, p in enumerate(parts))
    return raw.decode()


def device_subject(app_id: str, device_id: str, module_id: str | None = None) -> str:
    """The subject suffix of a record: tenant first, so a stream can be filtered by app."""
    subject = f"{encode_token(app_id)}.{encode_token(device_id)}"
    return subject if module_id is None else f"{subject}.{encode_token(module_id)}"
