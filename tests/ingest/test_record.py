"""The record codec: lossless round trip, and corrupt bytes raise RecordError only."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aislehub.ingest.record import (
    RecordError,
    TelemetryRecord,
    decode_parts,
    decode_record,
    encode_record,
)

_text = st.text(st.characters(codec="utf-8"), max_size=40)
records = st.builds(
    TelemetryRecord,
    app_id=_text,
    device_id=_text,
    module_id=st.none() | _text,
    enqueued_ms=st.integers(-(2**63), 2**63 - 1),
    properties=st.dictionaries(_text, _text, max_size=6),
    payload=st.binary(max_size=300),
)


@given(records)
def test_round_trip(record: TelemetryRecord) -> None:
    assert decode_record(encode_record(record)) == record


@given(records)
def test_parts_match_record(record: TelemetryRecord) -> None:
    app, device, module, ts, props, payload = decode_parts(encode_record(record))
    assert orjson.loads(props) == record.properties
    assert (app, device, module, ts, payload) == (
        record.app_id,
        record.device_id,
        record.module_id,
        record.enqueued_ms,
        record.payload,
    )


def test_empty_module_is_not_no_module() -> None:
    base = TelemetryRecord("app", "dev", None, 1, {}, b"{}")
    empty = TelemetryRecord("app", "dev", "", 1, {}, b"{}")
    assert decode_record(encode_record(base)).module_id is None
    assert decode_record(encode_record(empty)).module_id == ""


@given(records, st.data())
def test_truncated_or_extended_bytes_raise(record: TelemetryRecord, data: st.DataObject) -> None:
    encoded = encode_record(record)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(RecordError):
        decode_record(encoded[:cut])
    with pytest.raises(RecordError):
        decode_record(encoded + b"x")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_record_error(data: bytes) -> None:
    with contextlib.suppress(RecordError):
        decode_record(data)


def test_overlong_id_is_refused() -> None:
    with pytest.raises(RecordError, match="device_id"):
        encode_record(TelemetryRecord("app", "d" * 70_000, None, 0, {}, b""))
