"""One telemetry message as it travels through the ingest log, and its binary encoding.

The gateway builds a :class:`TelemetryRecord` from a device PUBLISH and appends
``encode_record(record)`` to the ingest log; consumers ``decode_record`` it back. The
encoding is a fixed little-endian header followed by the variable parts::

    version u8 | enqueued_ms i64 | len(app) u16 | len(device) u16 | len(module) u16
    | len(properties) u32 | len(payload) u32 | app | device | module | properties | payload

Strings are UTF-8; ``module_id is None`` is written as length ``0xFFFF`` so that an empty
module id stays distinguishable from no module. The property bag is orjson, the fastest
codec we have for a small ``dict[str, str]``, and it stays readable in a hex dump.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import orjson

from aislehub.errors import AislehubError

__all__ = ["RecordError", "TelemetryRecord", "decode_parts", "decode_record", "encode_record"]

_VERSION = 1
_HEADER = struct.Struct("<BqHHHII")
_unpack = _HEADER.unpack_from
_NO_MODULE = 0xFFFF
# Ids are at most 128 characters in IoT Hub; 0xFFFE bytes leaves room for any UTF-8
# spelling of them while keeping the length a u16 (0xFFFF means "no module").
_MAX_ID_BYTES = 0xFFFE


class RecordError(AislehubError):
    """Bytes that are not an encoded :class:`TelemetryRecord` (a bug or on-disk corruption)."""


@dataclass(frozen=True, slots=True)
class TelemetryRecord:
    """One device-to-cloud telemetry message, as received by the gateway.

    ``properties`` is the decoded IoT Hub property bag: system properties (``$.mid``
    message id, ``$.ct`` content type, ``$.ce`` content encoding, ``$.sub`` Plug and
    Play component) and the application's custom properties.
    """

    app_id: str
    device_id: str
    module_id: str | None
    enqueued_ms: int
    properties: dict[str, str]
    payload: bytes


def _id_bytes(value: str, what: str) -> bytes:
    raw = value.encode()
    if len(raw) > _MAX_ID_BYTES:
        raise RecordError(f"{what} is {len(raw)} bytes, over the {_MAX_ID_BYTES} limit")
    return raw


def encode_record(record: TelemetryRecord) -> bytes:
    """Serialize ``record``; the inverse of :func:`decode_record`."""
    app = _id_bytes(record.app_id, "app_id")
    device = _id_bytes(record.device_id, "device_id")
    module = b"" if record.module_id is None else _id_bytes(record.module_id, "module_id")
    module_len = _NO_MODULE if record.module_id is None else len(module)
    props = orjson.dumps(record.properties)
    header = _HEADER.pack(
        _VERSION,
        record.enqueued_ms,
        len(app),
        len(device),
        module_len,
        len(props),
        len(record.payload),
    )
    return b"".join((header, app, device, module, props, record.payload))


def decode_parts(data: bytes) -> tuple[str, str, str | None, int, bytes, bytes]:
    """``(app_id, device_id, module_id, enqueued_ms, properties JSON, payload)`` of a record.

    The store writer's fast path: no :class:`TelemetryRecord` is built and the property
    bag stays JSON bytes, which is what the store keeps anyway.
    """
    try:
        version, enqueued_ms, n_app, n_dev, n_mod, n_props, n_payload = _unpack(data)
    except struct.error as exc:
        raise RecordError("record shorter than its header") from exc
    if version != _VERSION:
        raise RecordError(f"unknown record version {version}")
    dev = _HEADER.size + n_app
    mod = dev + n_dev
    props = mod + (0 if n_mod == _NO_MODULE else n_mod)
    payload = props + n_props
    if payload + n_payload != len(data):
        raise RecordError(f"record lengths add up to {payload + n_payload}, got {len(data)}")
    try:
        app_id = data[_HEADER.size : dev].decode()
        device_id = data[dev:mod].decode()
        module_id = None if n_mod == _NO_MODULE else data[mod:props].decode()
    except UnicodeDecodeError as exc:
        raise RecordError(f"corrupt record id: {exc}") from exc
    return app_id, device_id, module_id, enqueued_ms, data[props:payload], data[payload:]


def decode_record(data: bytes) -> TelemetryRecord:
    """Parse bytes written by :func:`encode_record`; raise :class:`RecordError` otherwise."""
    app_id, device_id, module_id, enqueued_ms, props, payload = decode_parts(data)
    try:
        properties = orjson.loads(props) if props else {}
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"corrupt property bag: {exc}") from exc
    if type(properties) is not dict:
        raise RecordError("property bag is not a JSON object")
    return TelemetryRecord(app_id, device_id, module_id, enqueued_ms, properties, payload)
